"""What a job changed, as diffs; undone in one write, or refused when the files moved on."""

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from backend.generation.outcome import Output
from backend.repositories.projects import ProjectFile
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, events, finished, submit
from tests.support.specs import big_spec


async def changes_of(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> Any:
    response = await client.get(f"{JOBS}/{job_id}/changes", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def running_big_job(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    """The largest spec, once it is running (staging its ~190 files takes a second or two)."""
    job = (await submit(client, headers, big_spec())).json()
    for _ in range(500):
        current = (await client.get(f"{JOBS}/{job['id']}", headers=headers)).json()
        if current["status"] == "running":
            return current
        await asyncio.sleep(0.01)
    raise AssertionError("the job never ran")


async def test_changes_show_each_created_file_as_a_diff(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = await finished(client, alice, (await submit(client, alice)).json()["id"])
    changes = await changes_of(client, alice, job["id"])
    assert {c["path"] for c in changes} == {f["path"] for f in job["result"]["files"]}
    readme = next(c for c in changes if c["path"] == "README.md")
    assert readme["action"] == "created" and readme["size_before"] is None
    assert readme["size_after"] > 0
    assert readme["diff"].startswith("--- /dev/null\n+++ b/README.md\n")


async def test_revert_puts_the_project_back_and_only_once(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = await finished(client, alice, (await submit(client, alice)).json()["id"])
    project = f"/api/v2/projects/{job['project_id']}"
    reverted = await client.post(f"{JOBS}/{job['id']}/revert", headers=alice)
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["reverted_at"] is not None
    assert (await client.get(project, headers=alice)).json()["files"] == []
    again = await client.post(f"{JOBS}/{job['id']}/revert", headers=alice)
    assert again.status_code == 409 and again.json()["code"] == "job_reverted"


async def test_revert_refuses_files_changed_since_and_names_them(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = await finished(client, alice, (await submit(client, alice)).json()["id"])
    project = f"/api/v2/projects/{job['project_id']}"
    original = next(
        f
        for f in (await client.get(project, headers=alice)).json()["files"]
        if f["path"] == "README.md"
    )
    edited = {"path": "README.md", "content": "edited by hand\n"}
    assert (await client.put(f"{project}/files", json=edited, headers=alice)).status_code == 200

    refused = await client.post(f"{JOBS}/{job['id']}/revert", headers=alice)
    assert refused.status_code == 409
    assert refused.json()["code"] == "revert_conflict"
    assert refused.json()["paths"] == ["README.md"]
    files = (await client.get(project, headers=alice)).json()["files"]
    assert len(files) == len(job["result"]["files"])  # nothing was reverted

    restore = {"path": "README.md", "content": original["content"]}
    await client.put(f"{project}/files", json=restore, headers=alice)
    assert (await client.post(f"{JOBS}/{job['id']}/revert", headers=alice)).status_code == 200


async def test_only_a_succeeded_job_can_be_reverted(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = await running_big_job(client, alice)
    await client.post(f"{JOBS}/{job['id']}/cancel", headers=alice)
    refused = await client.post(f"{JOBS}/{job['id']}/revert", headers=alice)
    assert refused.status_code == 409
    assert refused.json()["code"] == "job_not_succeeded"


async def test_canceling_a_running_job_stops_it_and_changes_nothing(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = await running_big_job(client, alice)
    canceled = await client.post(f"{JOBS}/{job['id']}/cancel", headers=alice)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["project_id"] is None  # the project was never created
    stream = await events(client, alice, job["id"])
    assert stream[-1]["event"] == "canceled"
    assert [e["event"] for e in stream].count("canceled") == 1
    usage = (await client.get("/api/v2/generate/usage", headers=alice)).json()
    assert (usage["used"], usage["active_jobs"]) == (0, 0)
    projects = (await client.get("/api/v2/projects", headers=alice)).json()
    assert projects["meta"]["total"] == 0


async def test_output_that_breaks_a_cap_fails_the_job_and_leaves_the_project(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The apply step itself, on the real database: 501 files are refused as a whole."""
    user, headers = await signed_up(client)
    created = await client.post(
        "/api/v2/projects", json={"name": "Mine", "files": [{"path": "keep.txt",
                                                            "content": "keep"}]},
        headers=headers,
    )  # fmt: skip
    project = created.json()
    service = app.state.services.generation.lifecycle
    owner = await app.state.resources.mongo.db["users"].find_one({"email": user["email"]})
    job = await service.jobs.create(
        owner_id=str(owner["_id"]), kind="agentic", project_id=project["id"], model=None,
        request={}, period="2026-11",
    )  # fmt: skip
    await service.usage.start_period(job.owner_id, "2026-11")
    claimed = await service.jobs.claim(job.owner_id, job.id, "test-runner")
    assert claimed is not None
    too_many = {f"gen/f{i}.txt": "x" for i in range(501)}
    assert await service.end(claimed, "succeeded", output=Output(files=too_many, summary="s"))

    ended = await service.jobs.get(job.owner_id, job.id)
    assert ended is not None and ended.status == "failed"
    assert ended.error is not None and ended.error.code == "too_many_files"
    after = (await client.get(f"/api/v2/projects/{project['id']}", headers=headers)).json()
    assert [f["path"] for f in after["files"]] == ["keep.txt"]
    assert after["updated_at"] == project["updated_at"]


async def claimed_fullstack_job(app: FastAPI, email: str) -> Any:
    service = app.state.services.generation.lifecycle
    owner = await app.state.resources.mongo.db["users"].find_one({"email": email})
    job = await service.jobs.create(
        owner_id=str(owner["_id"]), kind="fullstack", project_id=None, model=None,
        request={}, period="2026-11",
    )  # fmt: skip
    await service.usage.start_period(job.owner_id, "2026-11")
    claimed = await service.jobs.claim(job.owner_id, job.id, "test-runner")
    assert claimed is not None
    return service, claimed


OUTPUT = Output(files={"app.py": "print('hi')\n"}, summary="s", project_name="Made")


async def test_a_job_that_stopped_running_meanwhile_writes_no_project(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The reaper put the job back while its runner was finishing: nothing is written."""
    user, headers = await signed_up(client)
    service, job = await claimed_fullstack_job(app, user["email"])
    assert await service.jobs.requeue(job, "retrying")
    assert not await service.end(job, "succeeded", output=OUTPUT)
    projects = (await client.get("/api/v2/projects", headers=headers)).json()
    assert projects["meta"]["total"] == 0
    owner = await app.state.resources.mongo.db["users"].find_one({"email": user["email"]})
    assert owner.get("project_count", 0) == 0


async def test_a_runner_whose_job_was_reaped_and_taken_by_another_cannot_end_it(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Seen in the soak: a commit slow enough for the reaper to retry its job elsewhere still
    ended it, while the second runner ran it. Only the runner holding the job ends it."""
    user, headers = await signed_up(client)
    service, first = await claimed_fullstack_job(app, user["email"])
    assert await service.jobs.requeue(first, "retrying")
    second = await service.jobs.claim(first.owner_id, first.id, "second-runner")
    assert second is not None
    assert not await service.end(first, "succeeded", output=OUTPUT)
    assert (await client.get("/api/v2/projects", headers=headers)).json()["meta"]["total"] == 0
    assert await service.end(second, "succeeded", output=OUTPUT)
    ended = await service.jobs.get(first.owner_id, first.id)
    assert ended is not None and ended.status == "succeeded" and ended.attempts == 2
    projects = (await client.get("/api/v2/projects", headers=headers)).json()
    assert [p["name"] for p in projects["data"]] == ["Made"]


async def test_a_cancel_mid_commit_still_commits_and_invalidates(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A worker shutting down while a job commits: the commit is not cut half-way (which
    would leave the transaction open on the server, blocking the next runner's writes)."""
    user, headers = await signed_up(client)
    before = (await client.get("/api/v2/projects", headers=headers)).json()  # now cached
    assert before["meta"]["total"] == 0
    service, job = await claimed_fullstack_job(app, user["email"])
    ending = asyncio.create_task(service.end(job, "succeeded", output=OUTPUT))
    await asyncio.sleep(0.005)
    ending.cancel()
    try:
        await ending
        raise AssertionError("the cancel was swallowed")
    except asyncio.CancelledError:
        pass
    ended = await service.jobs.get(job.owner_id, job.id)
    assert ended is not None and ended.status == "succeeded"
    projects = (await client.get("/api/v2/projects", headers=headers)).json()
    assert [p["name"] for p in projects["data"]] == ["Made"]


def test_apply_rules_match_the_files_api() -> None:
    from backend.generation.files import apply_changes
    from backend.generation.outcome import JobFailure
    from backend.services.project_rules import LIMITS

    now = "2026-01-01T00:00:00Z"
    existing = [ProjectFile(path="a.py", content="1", language="python", size=1, updated_at=now)]
    for writes, code in (
        ({"../x": "1"}, "invalid_path"),
        ({"/abs": "1"}, "invalid_path"),
        ({"big.txt": "x" * (1024 * 1024 + 1)}, "file_too_large"),
        ({f"f{i}.txt": "x" * (1024 * 1024) for i in range(9)}, "project_too_large"),
    ):
        try:
            apply_changes(existing, writes, LIMITS)
        except JobFailure as failure:
            assert failure.code == code
        else:
            raise AssertionError(f"{code} was not raised")
    files, changes = apply_changes(existing, {"a.py": "2", "b.py": "3", "gone": None}, LIMITS)
    assert [(c.path, c.action, c.before) for c in changes] == [
        ("a.py", "updated", "1"),
        ("b.py", "created", None),
    ]
    assert sorted(f.path for f in files) == ["a.py", "b.py"]
