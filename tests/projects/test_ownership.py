"""Another user's project, file or message does not exist: 404 on every route."""

import httpx
import pytest

from tests.support.factories import create_project

P = "/api/v2/projects"


def routes(project_id: str) -> list[tuple[str, str, dict[str, object]]]:
    base = f"{P}/{project_id}"
    return [
        ("GET", base, {}),
        ("PATCH", base, {"json": {"name": "stolen"}}),
        ("DELETE", base, {}),
        ("PUT", f"{base}/files", {"json": {"path": "a.py", "content": "x"}}),
        ("DELETE", f"{base}/files", {"params": {"path": "a.py"}}),
        ("GET", f"{base}/messages", {}),
        ("POST", f"{base}/messages", {"json": {"role": "user", "content": "hi"}}),
        ("GET", f"{base}/export", {}),
    ]


async def test_other_users_project_is_404_everywhere(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    project = await create_project(client, alice, files=[{"path": "a.py", "content": "mine"}])
    await client.post(
        f"{P}/{project['id']}/messages", json={"role": "user", "content": "private"}, headers=alice
    )
    for method, url, kwargs in routes(project["id"]):
        response = await client.request(method, url, headers=bob, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["code"] == "not_found"
    assert (await client.get(P, headers=bob)).json()["data"] == []
    # Nothing of Alice's changed.
    mine = (await client.get(f"{P}/{project['id']}", headers=alice)).json()
    assert mine["name"] == "Demo" and mine["files"][0]["content"] == "mine"
    messages = (await client.get(f"{P}/{project['id']}/messages", headers=alice)).json()
    assert [m["content"] for m in messages["data"]] == ["private"]


@pytest.mark.parametrize("bad_id", ["nothex", "123", "z" * 24, "0" * 25, "%24where"])
async def test_malformed_ids_are_404(
    client: httpx.AsyncClient, alice: dict[str, str], bad_id: str
) -> None:
    for method, url, kwargs in routes(bad_id):
        response = await client.request(method, url, headers=alice, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["code"] == "not_found"


async def test_projects_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(P)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_missing_file_is_404(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    project = await create_project(client, alice)
    response = await client.delete(
        f"{P}/{project['id']}/files", params={"path": "nope.py"}, headers=alice
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
