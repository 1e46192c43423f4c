"""Generation tests: jobs run in the app (no Redis) unless a test asks for the Redis queue
and real `python -m backend worker` processes."""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.config import Settings
from tests.conftest import GENEROUS_LIMITS
from tests.factories import signed_up

ROOT = Path(__file__).resolve().parents[2]
FULLSTACK = "/api/v2/generate/fullstack"
JOBS = "/api/v2/generate/jobs"
FAST_JOBS = {
    "job_heartbeat_s": 0.2,
    "job_stale_after_s": 1.5,
    "job_reaper_interval_s": 0.3,
    "job_cancel_wait_s": 5,
}
SPEC: dict[str, Any] = {
    "project_name": "Shop",
    "description": "A small shop",
    "data_models": [
        {"name": "Product", "fields": [{"name": "title", "type": "string"},
                                       {"name": "price", "type": "float"}]},
    ],
    "features": ["pagination"],
    "framework": "fastapi",
    "database": "sqlite",
}  # fmt: skip


def big_spec(models: int = 30, fields: int = 50) -> dict[str, Any]:
    """The largest spec the contract allows: a job that takes a while to stage."""
    types = ["string", "text", "integer", "float", "boolean", "date", "datetime", "email",
             "url", "uuid"]  # fmt: skip
    return {
        **SPEC,
        "data_models": [
            {"name": f"Thing{m}",
             "fields": [{"name": f"f{i}", "type": types[i % 10]} for i in range(fields)]}
            for m in range(models)
        ],
    }  # fmt: skip


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Jobs run inside the app: no Redis."""
    return make_settings(redis_url=None, **GENEROUS_LIMITS, **FAST_JOBS)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> dict[str, str]:
    return (await signed_up(client))[1]


async def submit(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    spec: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(FULLSTACK, json=spec or SPEC, headers={**headers, **extra})


async def events(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    job_id: str,
    last: int | None = None,
    *,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """The job's SSE stream parsed into events (until it ends, or `stop_after` events)."""
    extra = {"Last-Event-ID": str(last)} if last is not None else {}
    found: list[dict[str, Any]] = []
    async with client.stream(
        "GET", f"{JOBS}/{job_id}/events", headers={**headers, **extra}, timeout=60
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in parse_sse(response.aiter_lines()):
            found.append(event)
            if stop_after is not None and len(found) >= stop_after:
                break
    return found


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    async for line in lines:
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = json.loads(value) if name == "data" else value


async def finished(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict:
    """Follow the job to its end; the job as it then is."""
    await events(client, headers, job_id)
    return dict((await client.get(f"{JOBS}/{job_id}", headers=headers)).json())


class Worker:
    """A real `python -m backend worker` process on the app's database and Redis."""

    def __init__(self, settings: Settings, concurrency: int = 4, **env: str) -> None:
        url = settings.mongodb_url.get_secret_value()  # type: ignore[union-attr]
        redis = settings.redis_url.get_secret_value()  # type: ignore[union-attr]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the fixture
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env={**os.environ, "MONGODB_URL": url, "MONGODB_DB": settings.mongodb_db,
                 "REDIS_URL": redis, "LOG_LEVEL": "warning", "JOB_HEARTBEAT_S": "0.2",
                 "JOB_STALE_AFTER_S": "1.5", "JOB_REAPER_INTERVAL_S": "0.3", **env},
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> str:
        """SIGTERM and wait; what it logged (to a file: a pipe nobody reads fills and
        blocks the worker)."""
        self.process.terminate()
        self.process.wait(60)
        return self.said()

    def said(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(settings: Settings, concurrency: int = 4, **env: str) -> Worker:
        worker = Worker(settings, concurrency, **env)
        started.append(worker)
        time.sleep(0)  # started; it connects on its own
        return worker

    yield start
    # Stopped the way production stops them: a worker killed mid-commit would leave its
    # transaction open on the server, holding the database the teardown then drops.
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        try:
            worker.process.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker.log.close()
