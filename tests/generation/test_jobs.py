"""A fullstack job end to end, in the app: accepted, followed, applied, visible."""

import httpx

from backend.config import Settings
from tests.support.jobs import JOBS, events, finished, submit
from tests.support.query_plans import collection_scans, recorded_commands
from tests.support.specs import SPEC


async def test_a_fullstack_job_creates_its_project(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    accepted = await submit(client, alice)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] in ("queued", "running", "succeeded")
    assert job["kind"] == "fullstack" and job["progress"] >= 0

    done = await finished(client, alice, job["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"] == 100 and done["finished_at"] and done["error"] is None
    paths = {file["path"] for file in done["result"]["files"]}
    assert {"app/main.py", "README.md", "requirements.txt", "openapi.yaml"} <= paths
    assert all(file["action"] == "created" for file in done["result"]["files"])

    project = (await client.get(f"/api/v2/projects/{done['project_id']}", headers=alice)).json()
    assert project["name"] == SPEC["project_name"]
    assert {file["path"] for file in project["files"]} == paths
    conversation = await client.get(
        f"/api/v2/projects/{done['project_id']}/messages", headers=alice
    )
    roles = [message["role"] for message in conversation.json()["data"]]
    assert roles == ["user", "assistant"]


async def test_the_event_stream_tells_the_whole_story_once(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = (await submit(client, alice)).json()
    stream = await events(client, alice, job["id"])
    ids = [int(event["id"]) for event in stream]
    assert ids == sorted(set(ids)) and ids[0] == 1
    kinds = [event["event"] for event in stream]
    assert kinds[0] == "status" and kinds[-1] == "done"
    assert kinds.count("done") == 1 and "error" not in kinds and "canceled" not in kinds
    assert {"progress", "file"} <= set(kinds)
    assert stream[-1]["data"]["status"] == "succeeded"
    files = [event["data"] for event in stream if event["event"] == "file"]
    assert all(set(file) == {"path", "language", "size", "action"} for file in files)

    resumed = await events(client, alice, job["id"], last=ids[2])
    assert [int(event["id"]) for event in resumed] == ids[3:]
    assert await events(client, alice, job["id"], last=ids[-1]) == []


async def test_a_nextjs_job_writes_route_handlers_and_zod_schemas(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    spec = {**SPEC, "framework": "nextjs", "database": "postgresql"}
    done = await finished(client, alice, (await submit(client, alice, spec)).json()["id"])
    assert done["status"] == "succeeded", done
    paths = {file["path"] for file in done["result"]["files"]}
    assert {
        "app/api/products/route.ts",
        "app/api/products/item/route.ts",
        "schemas/product.ts",
        "lib/db.ts",
        "migrations/001_initial.sql",
        "package.json",
    } <= paths


async def test_generation_queries_use_an_index(
    client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
) -> None:
    """Admission, the runner, the event replay, the list, changes, revert, usage."""
    url = settings.mongodb_url.get_secret_value()  # type: ignore[union-attr]
    with recorded_commands(settings.mongodb_db) as commands:
        job = (await submit(client, alice, key="indexed")).json()
        await finished(client, alice, job["id"])
        await submit(client, alice, key="indexed")
        await client.get(JOBS, params={"status": "succeeded"}, headers=alice)
        await client.get(f"{JOBS}/{job['id']}/changes", headers=alice)
        await client.post(f"{JOBS}/{job['id']}/revert", headers=alice)
        await client.get("/api/v2/generate/usage", headers=alice)
    collections = {next(iter(c.values())) for c in commands}
    assert {"generation_jobs", "job_events", "generation_usage", "idempotency_keys"} <= collections
    assert collection_scans(url, settings.mongodb_db, commands) == []
