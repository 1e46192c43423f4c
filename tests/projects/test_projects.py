"""Project CRUD, lists, cache read-your-writes, ETags and export."""

import io
import zipfile

import httpx
import pytest

from tests.support.factories import create_project

PROJECTS = "/api/v2/projects"


async def names(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    response = await client.get(PROJECTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["data"]]


async def test_create_returns_the_project_with_files(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = await create_project(
        client,
        alice,
        name="Shop",
        description="A shop",
        files=[
            {"path": "src/app.py", "content": "print('hé')"},
            {"path": "README.md", "content": "# Shop"},
        ],
    )
    assert project["file_count"] == 2
    assert project["github_repo_url"] is None and project["vercel_url"] is None
    by_path = {file["path"]: file for file in project["files"]}
    assert by_path["src/app.py"]["language"] == "python"
    assert by_path["src/app.py"]["size"] == len("print('hé')".encode())
    assert by_path["README.md"]["language"] == "markdown"
    assert project["created_at"].endswith("Z")


async def test_list_has_summaries_without_files(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    await create_project(client, alice, files=[{"path": "a.txt", "content": "secret body"}])
    response = await client.get(PROJECTS, headers=alice)
    item = response.json()["data"][0]
    assert "files" not in item and "secret body" not in response.text
    assert item["file_count"] == 1


async def test_trailing_slash_is_not_redirected(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await client.get(PROJECTS, headers=alice)).status_code == 200
    response = await client.get(PROJECTS + "/", headers=alice)
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_reads_see_writes_through_the_cache(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert await names(client, alice) == []  # an empty list is now cached
    project = await create_project(client, alice, name="First")
    assert await names(client, alice) == ["First"]
    detail = f"{PROJECTS}/{project['id']}"
    assert (await client.get(detail, headers=alice)).json()["name"] == "First"  # cached

    await client.patch(detail, json={"name": "Renamed"}, headers=alice)
    assert await names(client, alice) == ["Renamed"]
    assert (await client.get(detail, headers=alice)).json()["name"] == "Renamed"

    await client.put(f"{detail}/files", json={"path": "x.py", "content": "1"}, headers=alice)
    assert (await client.get(detail, headers=alice)).json()["files"][0]["content"] == "1"
    assert (await client.get(PROJECTS, headers=alice)).json()["data"][0]["file_count"] == 1
    await client.put(f"{detail}/files", json={"path": "x.py", "content": "22"}, headers=alice)
    assert (await client.get(detail, headers=alice)).json()["files"][0]["content"] == "22"

    await client.delete(f"{detail}/files", params={"path": "x.py"}, headers=alice)
    assert (await client.get(detail, headers=alice)).json()["files"] == []

    assert (await client.delete(detail, headers=alice)).status_code == 204
    assert await names(client, alice) == []
    assert (await client.get(detail, headers=alice)).status_code == 404


async def test_pagination_meta(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    for n in range(5):
        await create_project(client, alice, name=f"P{n}")
    body = (await client.get(PROJECTS, params={"page": 2, "limit": 2}, headers=alice)).json()
    assert body["meta"] == {"page": 2, "limit": 2, "total": 5, "total_pages": 3}
    assert len(body["data"]) == 2
    beyond = (await client.get(PROJECTS, params={"page": 9, "limit": 2}, headers=alice)).json()
    assert beyond["data"] == [] and beyond["meta"]["total"] == 5


@pytest.mark.parametrize(
    "params", [{"page": "0"}, {"limit": "0"}, {"limit": "101"}, {"page": "x"}, {"sort": "owner_id"}]
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get(PROJECTS, params=params, headers=alice)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_every_sort(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    ids = {
        name: (await create_project(client, alice, name=name))["id"]
        for name in ("banana", "apple", "cherry")
    }
    # apple becomes the most recently updated
    await client.patch(f"{PROJECTS}/{ids['apple']}", json={"description": "touched"}, headers=alice)
    assert await names(client, alice, sort="name") == ["apple", "banana", "cherry"]
    assert await names(client, alice, sort="-name") == ["cherry", "banana", "apple"]
    assert await names(client, alice, sort="created_at") == ["banana", "apple", "cherry"]
    assert await names(client, alice, sort="-created_at") == ["cherry", "apple", "banana"]
    assert await names(client, alice) == ["apple", "cherry", "banana"]
    assert await names(client, alice, sort="updated_at") == ["banana", "cherry", "apple"]


async def test_search_is_plain_text_and_case_insensitive(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    await create_project(client, alice, name="Regex (.* fan", description="")
    await create_project(client, alice, name="Backslash", description="C:\\path")
    await create_project(client, alice, name="Dollar", description="uses $where here")
    await create_project(client, alice, name="Plain", description="Nothing special")
    assert await names(client, alice, search="(.*") == ["Regex (.* fan"]
    assert await names(client, alice, search="\\") == ["Backslash"]
    assert await names(client, alice, search="$where") == ["Dollar"]
    assert await names(client, alice, search="NOTHING") == ["Plain"]
    assert await names(client, alice, search=".*") == ["Regex (.* fan"]
    assert await names(client, alice, search="zzz") == []


async def test_etag_and_if_none_match(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    project = await create_project(client, alice)
    url = f"{PROJECTS}/{project['id']}"
    first = await client.get(url, headers=alice)
    etag = first.headers["etag"]
    unchanged = await client.get(url, headers={**alice, "if-none-match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    await client.patch(url, json={"description": "changed"}, headers=alice)
    changed = await client.get(url, headers={**alice, "if-none-match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


async def test_patch_sets_and_clears_urls(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    project = await create_project(client, alice)
    url = f"{PROJECTS}/{project['id']}"
    set_ = await client.patch(
        url,
        json={"github_repo_url": "https://github.com/a/b", "vercel_url": "https://b.vercel.app"},
        headers=alice,
    )
    assert set_.json()["github_repo_url"] == "https://github.com/a/b"
    cleared = await client.patch(url, json={"github_repo_url": None}, headers=alice)
    assert cleared.json()["github_repo_url"] is None
    assert cleared.json()["vercel_url"] == "https://b.vercel.app"


async def test_export_zip_holds_the_files(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    files = {"src/main.py": "print('hi')\n", "README.md": "# Ünïcode ✓\n", "a/b/c/d.txt": ""}
    project = await create_project(
        client,
        alice,
        name="My App: v2/final",
        files=[{"path": path, "content": content} for path, content in files.items()],
    )
    response = await client.get(f"{PROJECTS}/{project['id']}/export", headers=alice)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="My-App-v2-final.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert {name: archive.read(name).decode() for name in archive.namelist()} == files


async def test_messages_are_a_conversation_in_order(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = await create_project(client, alice)
    url = f"{PROJECTS}/{project['id']}/messages"
    for n in range(4):
        response = await client.post(url, json={"role": "user", "content": f"m{n}"}, headers=alice)
        assert response.status_code == 201
        assert set(response.json()) == {"id", "role", "content", "created_at"}
    page = (await client.get(url, params={"limit": 3}, headers=alice)).json()
    assert [m["content"] for m in page["data"]] == ["m0", "m1", "m2"]
    assert page["meta"] == {"page": 1, "limit": 3, "total": 4, "total_pages": 2}


@pytest.mark.parametrize("role", ["assistant", "system"])
async def test_clients_write_only_user_messages(
    client: httpx.AsyncClient, alice: dict[str, str], role: str
) -> None:
    project = await create_project(client, alice)
    response = await client.post(
        f"{PROJECTS}/{project['id']}/messages", json={"role": role, "content": "obey"},
        headers=alice,
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_an_upper_case_id_is_the_same_project_and_cache_entry(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = await create_project(client, alice, files=[{"path": "a.txt", "content": "a"}])
    upper = f"{PROJECTS}/{project['id'].upper()}"
    assert (await client.get(upper, headers=alice)).json()["files"][0]["path"] == "a.txt"
    gone = await client.delete(f"{PROJECTS}/{project['id']}/files", params={"path": "a.txt"},
                               headers=alice)  # fmt: skip
    assert gone.status_code == 204
    assert (await client.get(upper, headers=alice)).json()["files"] == []
