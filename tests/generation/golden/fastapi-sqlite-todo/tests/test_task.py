"""/tasks through HTTP: the whole life of a task, and what is refused."""

from fastapi.testclient import TestClient

URL = "/tasks"
VALID = {
    'title': 'sample text',
    'done': True,
    'due': '2024-01-02',
}
OTHER = {
    'title': 'other text',
    'done': False,
    'due': '2024-02-03',
}
MISSING_ID = 999999


def _list(response) -> list:
    body = response.json()
    return body["data"]


def test_create_read_update_delete(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(URL, json=VALID, headers=auth)
    assert created.status_code == 201, created.text
    item = created.json()
    assert {key: item[key] for key in VALID} == VALID
    assert item["created_at"] and item["updated_at"]

    assert client.get(f"{URL}/{item['id']}").json() == item
    assert item["id"] in [row["id"] for row in _list(client.get(URL))]

    first = next(iter(OTHER))
    updated = client.patch(f"{URL}/{item['id']}", json={first: OTHER[first]}, headers=auth)
    assert updated.status_code == 200, updated.text
    assert updated.json()[first] == OTHER[first]

    assert client.delete(f"{URL}/{item['id']}", headers=auth).status_code == 204
    assert client.get(f"{URL}/{item['id']}").status_code == 404
    assert item["id"] not in [row["id"] for row in _list(client.get(URL))]


def test_every_field_round_trips(client: TestClient, auth: dict[str, str]) -> None:
    item = client.post(URL, json=OTHER, headers=auth).json()
    assert {key: item[key] for key in OTHER} == OTHER


def test_unknown_fields_are_refused(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(URL, json={**VALID, "unexpected": 1}, headers=auth)
    assert response.status_code == 422


def test_wrong_types_are_refused(client: TestClient, auth: dict[str, str]) -> None:
    bad = client.post(URL, json={**VALID, 'title': 12}, headers=auth)
    assert bad.status_code == 422, 'title'
    bad = client.post(URL, json={**VALID, 'done': 'maybe'}, headers=auth)
    assert bad.status_code == 422, 'done'
    bad = client.post(URL, json={**VALID, 'due': '2024-13-45'}, headers=auth)
    assert bad.status_code == 422, 'due'


def test_required_fields_are_required(client: TestClient, auth: dict[str, str]) -> None:
    body = {key: value for key, value in VALID.items() if key != 'title'}
    assert client.post(URL, json=body, headers=auth).status_code == 422
    item = client.post(URL, json=VALID, headers=auth).json()
    nulled = client.patch(f"{URL}/{item['id']}", json={ 'title': None}, headers=auth)
    assert nulled.status_code == 422
    body = {key: value for key, value in VALID.items() if key != 'done'}
    assert client.post(URL, json=body, headers=auth).status_code == 422
    item = client.post(URL, json=VALID, headers=auth).json()
    nulled = client.patch(f"{URL}/{item['id']}", json={ 'done': None}, headers=auth)
    assert nulled.status_code == 422


def test_missing_items_are_404(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get(f"{URL}/{MISSING_ID}").status_code == 404
    assert client.patch(f"{URL}/{MISSING_ID}", json={}, headers=auth).status_code == 404
    assert client.delete(f"{URL}/{MISSING_ID}", headers=auth).status_code == 404
    assert client.get(f"{URL}/not-an-id").status_code in (404, 422)
    assert client.get(URL + "/" + "9" * 40).status_code in (404, 422)


def test_pages(client: TestClient, auth: dict[str, str]) -> None:
    for _ in range(3):
        client.post(URL, json=VALID, headers=auth)
    page = client.get(URL, params={"page": 2, "limit": 2}).json()
    assert page["meta"] == {"page": 2, "limit": 2, "total": 3, "total_pages": 2}
    assert len(page["data"]) == 1
    assert client.get(URL, params={"limit": 0}).status_code == 422
    assert client.get(URL, params={"limit": 101}).status_code == 422
    assert client.get(URL, params={"page": 0}).status_code == 422
