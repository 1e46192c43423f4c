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
BAD_IDS = ['not-an-id', 0, 2147483648, '9999999999999999999999999999999999999999']


def _list(response) -> list:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["data"]


def test_create_read_update_delete(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(URL, json=VALID, headers=auth)
    assert created.status_code == 201, created.text
    item = created.json()
    assert {key: item[key] for key in VALID} == VALID
    assert item["created_at"] and item["updated_at"]

    assert client.get(f"{URL}/{item['id']}", headers=auth).json() == item
    assert item["id"] in [row["id"] for row in _list(client.get(URL, headers=auth))]

    first = next(iter(OTHER))
    updated = client.patch(f"{URL}/{item['id']}", json={first: OTHER[first]}, headers=auth)
    assert updated.status_code == 200, updated.text
    assert updated.json()[first] == OTHER[first]

    assert client.delete(f"{URL}/{item['id']}", headers=auth).status_code == 204
    assert client.get(f"{URL}/{item['id']}", headers=auth).status_code == 404
    assert item["id"] not in [row["id"] for row in _list(client.get(URL, headers=auth))]


def test_every_field_round_trips(client: TestClient, auth: dict[str, str]) -> None:
    item = client.post(URL, json=OTHER, headers=auth).json()
    assert {key: item[key] for key in OTHER} == OTHER


def test_unknown_fields_are_refused(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(URL, json={**VALID, "unexpected": 1}, headers=auth)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


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
    for response in (
        client.get(f"{URL}/{MISSING_ID}", headers=auth),
        client.patch(f"{URL}/{MISSING_ID}", json={}, headers=auth),
        client.delete(f"{URL}/{MISSING_ID}", headers=auth),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_malformed_or_out_of_range_ids_are_422(client: TestClient, auth: dict[str, str]) -> None:
    for bad in BAD_IDS:
        for response in (
            client.get(f"{URL}/{bad}", headers=auth),
            client.patch(f"{URL}/{bad}", json={}, headers=auth),
            client.delete(f"{URL}/{bad}", headers=auth),
        ):
            assert response.status_code == 422, bad
            assert response.json()["code"] == "validation_error"


def test_pages(client: TestClient, auth: dict[str, str]) -> None:
    for _ in range(3):
        client.post(URL, json=VALID, headers=auth)
    page = client.get(URL, params={"page": 2, "limit": 2}, headers=auth).json()
    assert page["meta"] == {"page": 2, "limit": 2, "total": 3, "total_pages": 2}
    assert len(page["data"]) == 1
    last = client.get(URL, params={"page": 1_000_000, "limit": 100}, headers=auth)
    assert last.status_code == 200 and last.json()["data"] == []


def test_page_and_limit_are_bounded(client: TestClient, auth: dict[str, str]) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"page": 1_000_001},
                   {"page": 10**18}, {"page": "x"}):
        response = client.get(URL, params=params, headers=auth)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"
