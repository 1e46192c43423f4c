"""Every project limit in API.md, and the caps under concurrent writers."""

import asyncio

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from tests.support.factories import create_project

P = "/api/v2/projects"
MIB = 1024 * 1024


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../up",
        "a/../b",
        "a/./b",
        "a//b",
        "a\\b",
        "nul\x00byte",
        "sp ace.py",
        "ünïcode.py",
        "a/",
        ".",
        "..",
        "x" * 256,
        "/".join(["d"] * 11),
        "",
        "a;rm -rf",
        ".git/hooks/post-checkout",
        "src/.GIT/config",
        "CON",
        "docs/nul.txt",
        "com1.py",
        "Lpt9",
        "readme.",
    ],
)
async def test_bad_file_paths_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], path: str
) -> None:
    project = await create_project(client, alice)
    response = await client.put(
        f"{P}/{project['id']}/files", json={"path": path, "content": "x"}, headers=alice
    )
    assert_problem(response, 422, "validation_error")
    on_create = await client.post(
        P, json={"name": "x", "files": [{"path": path, "content": "x"}]}, headers=alice
    )
    assert_problem(on_create, 422, "validation_error")


@pytest.mark.parametrize(
    "path",
    [
        "a.py",
        "src/components/App.tsx",
        ".env.example",
        "a-b_c.d",
        "/".join(["d"] * 10),
        ".gitignore",
        ".github/workflows/ci.yml",
        "console.py",
        "com10.txt",
    ],
)
async def test_good_file_paths_are_accepted(
    client: httpx.AsyncClient, alice: dict[str, str], path: str
) -> None:
    project = await create_project(client, alice)
    response = await client.put(
        f"{P}/{project['id']}/files", json={"path": path, "content": "x"}, headers=alice
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "ok", "description": "d" * 2001},
        {"name": "ok", "owner_id": "someone"},
        {"name": "ok", "files": [{"path": "a", "content": "1"}, {"path": "a", "content": "2"}]},
        {"name": "ok", "files": [{"path": "a", "content": "1", "size": 1}]},
    ],
)
async def test_bad_project_bodies_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], body: dict[str, object]
) -> None:
    assert_problem(await client.post(P, json=body, headers=alice), 422, "validation_error")


@pytest.mark.parametrize(
    "field, value",
    [
        ("github_repo_url", "javascript:alert(1)"),
        ("github_repo_url", "ftp://example.com/x"),
        ("vercel_url", "not a url"),
        ("vercel_url", "https://"),
        ("name", "x" * 101),
        ("version", 9),
    ],
)
async def test_bad_updates_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], field: str, value: object
) -> None:
    project = await create_project(client, alice)
    response = await client.patch(f"{P}/{project['id']}", json={field: value}, headers=alice)
    assert_problem(response, 422, "validation_error")


async def test_file_over_one_mib_is_413(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    project = await create_project(client, alice)
    # 600k two-byte characters: under the character cap, over 1 MiB of UTF-8.
    response = await client.put(
        f"{P}/{project['id']}/files",
        json={"path": "big.txt", "content": "é" * 600_000},
        headers=alice,
    )
    assert_problem(response, 413, "file_too_large")
    exactly = await client.put(
        f"{P}/{project['id']}/files", json={"path": "ok.txt", "content": "a" * MIB}, headers=alice
    )
    assert exactly.status_code == 200


async def test_project_over_eight_mib_is_413(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    files = [{"path": f"f{n}.txt", "content": "a" * MIB} for n in range(8)]
    project = await create_project(client, alice, files=files)
    response = await client.put(
        f"{P}/{project['id']}/files", json={"path": "one-more.txt", "content": "a"}, headers=alice
    )
    assert_problem(response, 413, "project_too_large")
    # Replacing a file with one of the same size still fits.
    same = await client.put(
        f"{P}/{project['id']}/files", json={"path": "f0.txt", "content": "b" * MIB}, headers=alice
    )
    assert same.status_code == 200
    too_many = [{"path": f"g{n}.txt", "content": "a" * MIB} for n in range(9)]
    assert_problem(
        await client.post(P, json={"name": "x", "files": too_many}, headers=alice),
        413,
        "project_too_large",
    )


async def test_more_than_500_files_is_422(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    files = [{"path": f"f{n}.txt", "content": ""} for n in range(501)]
    assert_problem(
        await client.post(P, json={"name": "x", "files": files}, headers=alice),
        422,
        "too_many_files",
    )


async def test_message_limits(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    project = await create_project(client, alice)
    url = f"{P}/{project['id']}/messages"
    ok = await client.post(url, json={"role": "user", "content": "x" * 32_000}, headers=alice)
    assert ok.status_code == 201
    for body in (
        {"role": "user", "content": "x" * 32_001},
        {"role": "user", "content": ""},
        {"role": "root", "content": "hi"},
        {"role": "user", "content": "hi", "id": "x"},
    ):
        assert_problem(await client.post(url, json=body, headers=alice), 422, "validation_error")


async def test_concurrent_uploads_cannot_pass_the_size_cap(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    files = [{"path": f"base{n}.txt", "content": "a" * MIB} for n in range(7)]
    project = await create_project(client, alice, files=files)
    url = f"{P}/{project['id']}/files"
    chunk = "c" * (600 * 1024)  # one fits in the last MiB, two do not
    responses = await asyncio.gather(
        *(
            client.put(url, json={"path": f"race{n}.txt", "content": chunk}, headers=alice)
            for n in range(20)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [413] * 19
    detail = (await client.get(f"{P}/{project['id']}", headers=alice)).json()
    assert sum(file["size"] for file in detail["files"]) <= 8 * MIB
    assert detail["file_count"] == 8


async def test_concurrent_uploads_cannot_pass_the_file_count_cap(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    files = [{"path": f"f{n}.txt", "content": "x"} for n in range(495)]
    project = await create_project(client, alice, files=files)
    url = f"{P}/{project['id']}/files"
    responses = await asyncio.gather(
        *(
            client.put(url, json={"path": f"new{n}.txt", "content": "y"}, headers=alice)
            for n in range(20)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 5 + [422] * 15
    assert all(r.json()["code"] == "too_many_files" for r in responses if r.status_code == 422)
    detail = (await client.get(f"{P}/{project['id']}", headers=alice)).json()
    assert detail["file_count"] == len(detail["files"]) == 500


async def test_concurrent_writes_to_one_path_keep_totals_exact(
    client: httpx.AsyncClient, alice: dict[str, str], app: FastAPI
) -> None:
    project = await create_project(client, alice)
    url = f"{P}/{project['id']}/files"
    await asyncio.gather(
        *(
            client.put(url, json={"path": "same.txt", "content": "z" * n}, headers=alice)
            for n in range(1, 21)
        )
    )
    stored = await app.state.resources.mongo.db["projects"].find_one(
        {"_id": ObjectId(project["id"])}
    )
    assert stored["file_count"] == len(stored["files"]) == 1
    # The running total equals the one file that won, whichever it was.
    assert stored["total_size"] == stored["files"][0]["size"]


async def test_too_many_files_on_create_are_refused_before_validation(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    files = [{"path": f"f{n}", "content": ""} for n in range(300_000)]  # ~9 MiB, under the limit
    response = await client.post(
        "/api/v2/projects", json={"name": "big", "files": files}, headers=alice
    )
    assert_problem(response, 422, "too_many_files")
