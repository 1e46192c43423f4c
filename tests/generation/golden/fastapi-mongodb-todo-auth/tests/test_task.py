"""/tasks through HTTP: the whole life of a task, and what is refused."""

import pytest
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
BAD_IDS = ['not-an-id', '00000000000000000000000', '0000000000000000000000000', '9999999999999999999999999999999999999999']


def _list(response) -> list:
    assert response.status_code == 200, response.text
    body = response.json()
    return body


def test_create_read_update_delete(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(URL, json=VALID, headers=auth)
    assert created.status_code == 201, created.text
    item = created.json()
    assert {key: item[key] for key in VALID} == VALID

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


def test_the_list_has_every_row_and_says_how_many(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        client.post(URL, json=VALID, headers=auth)
    response = client.get(URL, headers=auth)
    assert len(response.json()) == 3 and response.headers["x-total-count"] == "3"
    monkeypatch.setattr("app.routers.task.LIST_CAP", 2)
    capped = client.get(URL, headers=auth)
    assert len(capped.json()) == 2 and capped.headers["x-total-count"] == "3"


def test_search_matches_text_fields(client: TestClient, auth: dict[str, str]) -> None:
    client.post(URL, json=VALID, headers=auth)
    client.post(URL, json=OTHER, headers=auth)
    needle = str(VALID['title'])[:5]
    found = _list(client.get(URL, params={"q": needle.upper()}, headers=auth))
    assert found and all(needle.lower() in str(row).lower() for row in found)
    assert _list(client.get(URL, params={"q": "%_no-such-thing_%"}, headers=auth)) == []
    too_long = client.get(URL, params={"q": "x" * 201}, headers=auth)
    assert too_long.status_code == 422


def test_every_route_needs_a_token(client: TestClient, auth: dict[str, str]) -> None:
    item = client.post(URL, json=VALID, headers=auth).json()
    for headers in ({}, {"Authorization": "Bearer nope"}):
        for response in (
            client.post(URL, json=VALID, headers=headers),
            client.get(URL, headers=headers),
            client.get(f"{URL}/{item['id']}", headers=headers),
            client.patch(f"{URL}/{item['id']}", json={}, headers=headers),
            client.delete(f"{URL}/{item['id']}", headers=headers),
        ):
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"


def test_another_accounts_records_are_404(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    item = client.post(URL, json=VALID, headers=auth).json()
    mine = client.post(URL, json=OTHER, headers=other_auth).json()
    for response in (
        client.get(f"{URL}/{item['id']}", headers=other_auth),
        client.patch(f"{URL}/{item['id']}", json=OTHER, headers=other_auth),
        client.delete(f"{URL}/{item['id']}", headers=other_auth),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert [row["id"] for row in _list(client.get(URL, headers=other_auth))] == [mine["id"]]
    assert client.get(f"{URL}/{item['id']}", headers=auth).json() == item


def test_deleted_items_are_kept_but_hidden(client: TestClient, auth: dict[str, str]) -> None:
    item = client.post(URL, json=VALID, headers=auth).json()
    assert client.delete(f"{URL}/{item['id']}", headers=auth).status_code == 204
    assert client.get(f"{URL}/{item['id']}", headers=auth).status_code == 404
    assert client.delete(f"{URL}/{item['id']}", headers=auth).status_code == 404
    from bson import ObjectId

    stored = client.app.state.database.db["tasks"].find_one({"_id": ObjectId(item["id"])})
    assert stored is not None and stored["deleted_at"] is not None
