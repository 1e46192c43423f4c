"""Verified generation through the API: a job's code runs in the real sandbox before the job
ends, what ran is on the job and in its events, and agents cannot call failing code done."""

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, events, finished, submit
from tests.support.llm import Reply, ScriptedLLM, call, llm_settings
from tests.support.servers import Worker
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS
from tests.support.specs import ALL_FEATURES, SPEC, rich_spec

AGENTIC = "/api/v2/generate/agentic"
CATALOGUE = [{"id": "test/coder", "provider": "test", "kinds": ["agentic"], "plans": ["free"]}]
SANDBOX_ON = {"sandbox_command": "bwrap"}
RICH = rich_spec("sqlite", ALL_FEATURES).model_dump()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], llm: ScriptedLLM) -> Settings:
    return llm_settings(make_settings, llm, CATALOGUE).model_copy(update=SANDBOX_ON)


async def until(check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{check.__name__} never held"
        await asyncio.sleep(0.02)


def sandboxes_under(ancestor: int) -> set[int]:
    """The bubblewrap processes descended from `ancestor` (other test processes may be
    running sandboxes of their own at the same time)."""
    listing = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True)
    parent, bwrap = {}, set()
    for line in listing.stdout.splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        parent[int(pid)] = int(ppid)
        if "bwrap --unshare-all" in args:
            bwrap.add(int(pid))
    found = set()
    for pid in bwrap:
        walk = pid
        while walk in parent and walk != ancestor:
            walk = parent[walk]
        if walk == ancestor:
            found.add(pid)
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if os.path.exists(f"/proc/{pid}")}


async def test_a_fullstack_job_runs_its_projects_tests_and_reports_each(
    client: httpx.AsyncClient,
) -> None:
    _, alice = await signed_up(client)
    job = await finished(client, alice, (await submit(client, alice)).json()["id"])
    assert job["status"] == "succeeded", job
    checks = job["result"]["checks"]
    assert checks["status"] == "passed" and checks["reason"] is None
    assert checks["passed"] > 10 and checks["failed"] == checks["errors"] == 0
    assert checks["command"] == "python -m pytest"
    assert "database: SQLite" in checks["output_tail"]
    stream = await events(client, alice, job["id"])
    stages = [e["data"]["stage"] for e in stream if e["event"] == "progress"]
    assert stages.index("verifying") < stages.index("applying")
    ran = [e["data"] for e in stream if e["event"] == "check"]
    assert len(ran) == checks["passed"] and {c["status"] for c in ran} == {"passed"}
    assert any(c["name"].startswith("tests.test_product::") for c in ran)
    (summary,) = [e["data"] for e in stream if e["event"] == "checks"]
    assert summary == checks


async def test_a_nextjs_job_runs_its_vitest_suite(client: httpx.AsyncClient) -> None:
    _, alice = await signed_up(client)
    spec = {**SPEC, "framework": "nextjs", "features": ["auth", "pagination"]}
    job = await finished(client, alice, (await submit(client, alice, spec)).json()["id"])
    assert job["status"] == "succeeded", job
    checks = job["result"]["checks"]
    assert (checks["status"], checks["failed"], checks["errors"]) == ("passed", 0, 0), checks
    assert checks["passed"] > 5 and checks["command"].startswith("vitest run")
    ran = [
        e["data"]["name"] for e in await events(client, alice, job["id"]) if e["event"] == "check"
    ]
    assert "tests/auth.test.ts::auth > needs a token" in ran


@pytest.mark.parametrize("framework", ["fastapi", "nextjs"])
async def test_a_postgresql_project_is_checked_on_postgresql_in_its_sandbox(
    client: httpx.AsyncClient, framework: str
) -> None:
    _, alice = await signed_up(client)
    spec = {**SPEC, "framework": framework, "database": "postgresql", "features": ["auth"]}
    job = await finished(client, alice, (await submit(client, alice, spec)).json()["id"])
    assert job["status"] == "succeeded", job
    checks = job["result"]["checks"]
    assert (checks["status"], checks["failed"], checks["errors"]) == ("passed", 0, 0), checks
    assert checks["passed"] > 5
    if framework == "fastapi":  # its tests name the database they ran on
        assert "database: postgresql+psycopg (TEST_DATABASE_URL)" in checks["output_tail"]


async def test_a_mongodb_project_is_skipped_with_its_reason(client: httpx.AsyncClient) -> None:
    _, alice = await signed_up(client)
    spec = {**SPEC, "database": "mongodb"}
    job = await finished(client, alice, (await submit(client, alice, spec)).json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["checks"]["status"] == "skipped"
    assert job["result"]["checks"]["reason"] == "needs_database_server"


async def test_a_project_failing_its_checks_fails_the_job_and_changes_nothing(
    make_settings: Callable[..., Settings], llm: ScriptedLLM
) -> None:
    """Cut short by the time limit: our own generator's run failing, as a bug would."""
    settings = llm_settings(make_settings, llm, CATALOGUE).model_copy(
        update={**SANDBOX_ON, "sandbox_timeout_s": 0.5}
    )
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        job = await finished(client, alice, (await submit(client, alice)).json()["id"])
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "checks_failed"
        assert job["project_id"] is None and job["result"] is None
        stream = await events(client, alice, job["id"])
        (checks,) = [e["data"] for e in stream if e["event"] == "checks"]
        assert (checks["status"], checks["reason"]) == ("failed", "timeout")
        projects = (await client.get("/api/v2/projects", headers=alice)).json()
        assert projects["meta"]["total"] == 0
        usage = (await client.get("/api/v2/generate/usage", headers=alice)).json()
        assert usage["used"] == 0  # our failure: the generation is given back


async def test_a_cancel_during_verification_kills_the_sandbox(client: httpx.AsyncClient) -> None:
    _, alice = await signed_up(client)
    job_id = (await submit(client, alice, RICH)).json()["id"]
    await wait_for_stage(client, alice, job_id, "verifying")
    await until(lambda: sandboxes_under(os.getpid()))
    running = sandboxes_under(os.getpid())
    asked = time.monotonic()
    assert (await client.post(f"{JOBS}/{job_id}/cancel", headers=alice)).status_code == 200
    job = await finished(client, alice, job_id)
    assert job["status"] == "canceled" and time.monotonic() - asked < 8
    assert job["project_id"] is None
    await until(lambda: not alive(running), timeout=5)


async def wait_for_stage(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: str, stage: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await client.get(f"{JOBS}/{job_id}", headers=headers)).json()
        if job["stage"] == stage:
            return dict(job)
        assert job["status"] in ("queued", "running"), job
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached {stage}")


@pytest.fixture
async def queued_app(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    settings = make_settings(**GENEROUS_LIMITS, **FAST_JOBS)  # the Redis queue: workers run jobs
    async with open_client(create_app(settings)) as client:
        yield settings, client


async def test_a_worker_killed_mid_verification_has_its_job_retried(
    queued_app: tuple[Settings, httpx.AsyncClient], workers: Callable[..., Worker]
) -> None:
    settings, client = queued_app
    _, alice = await signed_up(client)
    job_id = (await submit(client, alice, RICH)).json()["id"]
    first = workers(settings, SANDBOX_COMMAND="bwrap")
    await wait_for_stage(client, alice, job_id, "verifying")
    await until(lambda: sandboxes_under(first.process.pid))
    running = sandboxes_under(first.process.pid)
    first.kill()
    await until(lambda: not alive(running), timeout=5)  # they die with it (--die-with-parent)
    workers(settings, SANDBOX_COMMAND="bwrap")
    deadline = time.monotonic() + 180
    while (job := (await client.get(f"{JOBS}/{job_id}", headers=alice)).json())["status"] in (
        "queued", "running",
    ) and time.monotonic() < deadline:  # fmt: skip
        await asyncio.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert job["result"]["checks"]["status"] == "passed"


APP_V1 = "def add(a, b):\n    return a - b\n"
TEST = "from app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def failing_then_fixed() -> list[Reply]:
    return [
        Reply(calls=[call("write_file", path="docs/plan.md", content="# add()\n"),
                     call("finish", summary="planned", test_command="python -m pytest -q")]),
        Reply(calls=[call("write_file", path="app.py", content=APP_V1),
                     call("write_file", path="tests/test_app.py", content=TEST),
                     call("finish", summary="too early")]),
        Reply(calls=[call("run_tests")]),
        Reply(calls=[call("finish", summary="still failing")]),
        Reply(calls=[call("edit_file", path="app.py", old="a - b", new="a + b"),
                     call("finish", summary="not run since the change")]),
        Reply(calls=[call("run_tests")]),
        Reply(calls=[call("finish", summary="add() works")]),
    ]  # fmt: skip


async def test_an_agent_runs_failing_tests_fixes_the_code_and_only_then_finishes(
    client: httpx.AsyncClient, llm: ScriptedLLM
) -> None:
    llm.reset(*failing_then_fixed())
    _, alice = await signed_up(client)
    response = await client.post(AGENTIC, json={"prompt": "add()"}, headers=alice)
    job = await finished(client, alice, response.json()["id"])
    assert job["status"] == "succeeded", job
    checks = job["result"]["checks"]
    assert (checks["status"], checks["passed"], checks["failed"]) == ("passed", 1, 0)
    assert checks["command"] == "python -m pytest -q"
    told = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert any(t.startswith("error: not finished: run_tests first") for t in told)
    failed = [t for t in told if t.startswith("failed: 0 passed, 1 failed")]
    assert failed and "first failures: tests.test_app::test_add" in failed[0]
    assert any(t.startswith("error: not finished: the last test run failed") for t in told)
    assert any(t.startswith("passed: 1 passed, 0 failed") for t in told)
    stream = await events(client, alice, job["id"])
    runs = [e["data"]["status"] for e in stream if e["event"] == "checks"]
    assert runs == ["failed", "passed"]
    project = (await client.get(f"/api/v2/projects/{job['project_id']}", headers=alice)).json()
    assert {f["path"]: f["content"] for f in project["files"]}["app.py"] == APP_V1.replace("-", "+")


async def test_an_agent_out_of_budget_with_failing_tests_fails_and_lands_nothing(
    make_settings: Callable[..., Settings], llm: ScriptedLLM
) -> None:
    settings = llm_settings(make_settings, llm, CATALOGUE).model_copy(
        update={**SANDBOX_ON, "agent_max_calls": 4}
    )
    llm.reset(*failing_then_fixed())
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        response = await client.post(AGENTIC, json={"prompt": "add()"}, headers=alice)
        job = await finished(client, alice, response.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "step_budget_exceeded"
    assert job["project_id"] is None


async def test_without_a_sandbox_an_agent_finishes_and_its_checks_say_skipped(
    make_settings: Callable[..., Settings], llm: ScriptedLLM
) -> None:
    settings = llm_settings(make_settings, llm, CATALOGUE)  # the suite's default: sandbox off
    llm.reset(
        Reply(calls=[call("finish", summary="planned")]),
        Reply(calls=[call("write_file", path="app.py", content=APP_V1), call("run_tests")]),
        Reply(calls=[call("finish", summary="done")]),
    )  # fmt: skip
    async with open_client(create_app(settings)) as client:
        _, alice = await signed_up(client)
        response = await client.post(AGENTIC, json={"prompt": "add()"}, headers=alice)
        job = await finished(client, alice, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["checks"]["status"] == "skipped"
    assert job["result"]["checks"]["reason"] == "sandbox_unavailable"
    told = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "tests not run: sandbox_unavailable" in told


@pytest.mark.parametrize("command", ['python -m "pytest', "", "x" * 201])
async def test_a_test_command_that_is_not_one_is_an_argument_error(
    client: httpx.AsyncClient, llm: ScriptedLLM, command: str
) -> None:
    llm.reset(Reply(calls=[call("finish", summary="planned", test_command=command)]))
    _, alice = await signed_up(client)
    response = await client.post(AGENTIC, json={"prompt": "add()"}, headers=alice)
    await finished(client, alice, response.json()["id"])
    told = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert told[0].startswith("error: the arguments are not valid for finish")
