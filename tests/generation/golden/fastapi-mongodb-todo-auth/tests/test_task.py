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
MISSING_ID = '000000000000000000000000'


def _list(response) -> list:
    body = response.json()
    return body


def test_create_read_update_delete(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(URL, json=VALID, headers=auth)
    assert created.status_code == 201, created.text
    item = created.json()
    assert {key: item[key] for key in VALID} == VALID

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


def test_search_matches_text_fields(client: TestClient, auth: dict[str, str]) -> None:
    client.post(URL, json=VALID, headers=auth)
    client.post(URL, json=OTHER, headers=auth)
    needle = str(VALID['title'])[:5]
    found = _list(client.get(URL, params={"q": needle.upper()}))
    assert found and all(needle.lower() in str(row).lower() for row in found)
    assert _list(client.get(URL, params={"q": "%_no-such-thing_%"})) == []


def test_writes_need_a_token(client: TestClient, auth: dict[str, str]) -> None:
    assert client.post(URL, json=VALID).status_code == 401
    assert client.post(URL, json=VALID, headers={"Authorization": "Bearer nope"}).status_code == 401
    item = client.post(URL, json=VALID, headers=auth).json()
    assert client.patch(f"{URL}/{item['id']}", json={}).status_code == 401
    assert client.delete(f"{URL}/{item['id']}").status_code == 401
    assert client.get(f"{URL}/{item['id']}").status_code == 200


def test_deleted_items_are_kept_but_hidden(client: TestClient, auth: dict[str, str]) -> None:
    item = client.post(URL, json=VALID, headers=auth).json()
    assert client.delete(f"{URL}/{item['id']}", headers=auth).status_code == 204
    assert client.get(f"{URL}/{item['id']}").status_code == 404
    assert client.delete(f"{URL}/{item['id']}", headers=auth).status_code == 404
    from bson import ObjectId

    stored = client.app.state.database.db["tasks"].find_one({"_id": ObjectId(item["id"])})
    assert stored is not None and stored["deleted_at"] is not None
