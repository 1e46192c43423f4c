"""Real `python -m backend worker` processes and two API replicas on one database and Redis:
live events across processes, reconnects, a killed worker, a graceful shutdown."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backend.config import Settings
from backend.dev import wait_for_mongodb
from backend.jobs import CONSUMER_GROUP, QUEUE_NAME
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, events, submit
from tests.support.servers import MongoServer, RedisServer, ThreadedServer, Worker
from tests.support.settings import FAST_JOBS, GENEROUS_LIMITS
from tests.support.specs import big_spec


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """The Redis queue: jobs run only in worker processes."""
    return make_settings(**GENEROUS_LIMITS, **FAST_JOBS)


@pytest.fixture
def replicas(settings: Settings) -> Iterator[tuple[str, str]]:
    """Two API processes' worth of app (each with its own clients and change stream)."""
    servers = [ThreadedServer(create_app(settings)).start() for _ in range(2)]
    for server in servers:
        for _ in range(200):
            if httpx.get(f"{server.url}/readyz").status_code == 200:
                break
            time.sleep(0.05)
    yield servers[0].url, servers[1].url
    for server in servers:
        server.stop()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(create_app(settings)) as client:
        yield client


async def wait_for(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    job_id: str,
    check: Callable[[Any], bool],
    timeout: float = 180,  # a loaded 2-core machine commits the largest spec slowly
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await client.get(f"{JOBS}/{job_id}", headers=headers)).json()
        if check(job):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"the job never got there: {job}")


def designing(job: Any) -> bool:
    """Mid-job for seconds: the largest spec renders in the worker's process pool."""
    return job["status"] == "running" and job["stage"] == "designing"


async def test_events_reach_another_replica_live_and_resume_on_a_third_connection(
    settings: Settings, replicas: tuple[str, str], workers: Callable[..., Worker]
) -> None:
    first, second = replicas
    async with (
        httpx.AsyncClient(base_url=first, timeout=60) as a,
        httpx.AsyncClient(base_url=second, timeout=60) as b,
    ):
        _, alice = await signed_up(a)
        job = (await submit(a, alice, big_spec(models=20))).json()
        workers(settings)
        head = await events(b, alice, job["id"], stop_after=8)  # live, on the other replica
        assert [e["event"] for e in head][:2] == ["status", "status"]
        rest = await events(a, alice, job["id"], last=int(head[-1]["id"]))
        everything = await events(b, alice, job["id"])
    ids = [int(e["id"]) for e in head + rest]
    assert ids == list(range(1, len(ids) + 1))
    assert [e["id"] for e in everything] == [e["id"] for e in head + rest]
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["status"] == "succeeded"


async def test_a_killed_worker_is_retried_once_then_the_job_fails_worker_lost(
    settings: Settings, api: httpx.AsyncClient, workers: Callable[..., Worker]
) -> None:
    _, alice = await signed_up(api)
    job = (await submit(api, alice, big_spec())).json()
    first = workers(settings)
    running = await wait_for(api, alice, job["id"], designing)
    first.kill()  # mid-job, no goodbye
    # The next worker's reaper finds the stale heartbeat, queues the job again, runs it.
    second = workers(settings)
    await wait_for(
        api, alice, job["id"], lambda j: designing(j) and j["started_at"] != running["started_at"]
    )
    second.kill()
    workers(settings)  # the job has had its retry: this reaper fails it
    ended = await wait_for(api, alice, job["id"], lambda j: j["status"] != "running")
    assert ended["status"] == "failed", ended
    assert ended["error"]["code"] == "worker_lost"
    assert ended["project_id"] is None
    stream = await events(api, alice, job["id"])
    assert stream[-1]["event"] == "error" and stream[-1]["data"]["code"] == "worker_lost"
    usage = (await api.get("/api/v2/generate/usage", headers=alice)).json()
    assert (usage["used"], usage["active_jobs"]) == (0, 0)


async def test_a_worker_stopping_gracefully_hands_its_job_back(
    settings: Settings, api: httpx.AsyncClient, workers: Callable[..., Worker]
) -> None:
    _, alice = await signed_up(api)
    job = (await submit(api, alice, big_spec())).json()
    leaving = workers(settings, WORKER_SHUTDOWN_TIMEOUT_S="0", LOG_LEVEL="info")
    await wait_for(api, alice, job["id"], designing)
    said = leaving.stop()
    back = (await api.get(f"{JOBS}/{job['id']}", headers=alice)).json()
    assert back["status"] == "queued" and back["stage"] == "requeued", (back, said[-3000:])
    taking_over = workers(settings, LOG_LEVEL="info")
    try:
        done = await wait_for(api, alice, job["id"], lambda j: j["status"] == "succeeded")
    except AssertionError as never:
        raise AssertionError(
            f"{never}\nthe stopped worker said:\n{said[-3000:]}\n"
            f"the next one said:\n{taking_over.said()[-5000:]}"
        ) from None
    assert done["result"]["files"]
    kinds = [e["event"] for e in await events(api, alice, job["id"])]
    assert kinds.count("done") == 1 and "error" not in kinds


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A Redis of its own that keeps the queue across a `kill -9` (append-only, fsync always),
    as a production Redis holding a queue does."""
    server = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    yield server
    server.close()


def _kill(redis: RedisServer) -> None:
    assert redis.process is not None
    redis.process.kill()
    redis.process.wait(10)
    redis.process = None


async def test_a_worker_outlives_a_redis_outage_and_takes_jobs_again(
    make_settings: Callable[..., Settings],
    durable_redis: RedisServer,
    workers: Callable[..., Worker],
) -> None:
    settings = make_settings(redis_url=durable_redis.url, **GENEROUS_LIMITS, **FAST_JOBS)
    worker = workers(settings)
    async with open_client(create_app(settings)) as api:
        _, alice = await signed_up(api)
        before = (await submit(api, alice, key="before")).json()
        assert (await wait_for(api, alice, before["id"], _ended))["status"] == "succeeded"
        _kill(durable_redis)
        await asyncio.sleep(3)  # the worker's stream read fails, again and again
        durable_redis.start()
        after = await _submitted_once_redis_answers(api, alice)
        ended = await wait_for(api, alice, after["id"], _ended, timeout=60)
    assert worker.process.poll() is None, worker.said()
    assert ended["status"] == "succeeded", ended
    assert "queue_unreachable" in worker.said()


async def test_a_job_put_back_while_redis_is_down_is_sent_once_it_returns(
    make_settings: Callable[..., Settings],
    durable_redis: RedisServer,
    workers: Callable[..., Worker],
) -> None:
    settings = make_settings(redis_url=durable_redis.url, **GENEROUS_LIMITS, **FAST_JOBS)
    async with open_client(create_app(settings)) as api:
        _, alice = await signed_up(api)
        job = (await submit(api, alice, big_spec())).json()
        first = workers(settings, WORKER_SHUTDOWN_TIMEOUT_S="0")
        await wait_for(api, alice, job["id"], designing)
        _kill(durable_redis)
        said = first.stop()  # puts the job back: queued in MongoDB, but no message can be sent
        assert "job_not_enqueued" in said
        durable_redis.start()
        workers(settings)  # its reaper sends the message; it (or another) runs the job
        ended = await wait_for(api, alice, job["id"], _ended)
    assert ended["status"] == "succeeded", ended


async def _submitted_once_redis_answers(api: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    """The API answers 503 until its own Redis client reconnects; a client tries again."""
    for _ in range(100):
        response = await submit(api, headers, key="after")
        if response.status_code != 503:
            assert response.status_code == 202, response.text
            return response.json()
        await asyncio.sleep(0.2)
    raise AssertionError(f"the API never took the job: {response.text}")


def _ended(job: Any) -> bool:
    return job["status"] not in ("queued", "running")


async def test_a_database_outage_interrupts_the_running_job_and_holds_the_next_until_it_is_back(
    make_settings: Callable[..., Settings], workers: Callable[..., Worker]
) -> None:
    """The database is killed under a worker that runs one job and has the next one waiting.

    The running job cannot be ended, so it is interrupted, not failed: once the database is
    back a reaper runs it again. The next job's message, taken while the database is down, is
    not dropped: its claim waits for the database. Both succeed; the quota counts both once.
    """
    database = MongoServer(on_disk=True).start()
    try:
        settings = make_settings(mongodb_url=database.url, max_active_jobs_free=2,
                                 **GENEROUS_LIMITS, **FAST_JOBS)  # fmt: skip
        worker = workers(settings, concurrency=1)
        async with open_client(create_app(settings)) as api:
            _, alice = await signed_up(api)
            first = (await submit(api, alice, big_spec(), key="first")).json()
            await wait_for(api, alice, first["id"], designing)
            second = (await submit(api, alice, key="second")).json()  # behind the first
            database.kill()
            await _said(worker, "job_interrupted", "job_claim_waiting")
            database.spawn()  # on this (the main) thread: the server lives as long as it
            assert database.process is not None
            await asyncio.to_thread(wait_for_mongodb, database.url, database.process, 60)
            ended = [await wait_for(api, alice, job["id"], _ended_once_answered)
                     for job in (first, second)]  # fmt: skip
            usage = (await api.get("/api/v2/generate/usage", headers=alice)).json()
    finally:
        database.close()
    assert [job["status"] for job in ended] == ["succeeded", "succeeded"], worker.said()[-3000:]
    assert (usage["used"], usage["active_jobs"]) == (2, 0)
    assert "job_crashed" not in worker.said()


async def _said(worker: Worker, *lines: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(line in worker.said() for line in lines):
        assert time.monotonic() < deadline, f"the worker never said {lines}: {worker.said()}"
        await asyncio.sleep(0.1)


def _ended_once_answered(job: Any) -> bool:
    """Ended; an answer without a status is the API's own 503 while it reconnects."""
    return job.get("status") not in (None, "queued", "running")


async def test_a_message_that_died_with_the_worker_that_read_it_is_sent_again(
    settings: Settings, api: httpx.AsyncClient, workers: Callable[..., Worker]
) -> None:
    """A worker killed after reading a message and before claiming its job leaves the message
    pending under its name; taskiq-redis hands it on only when new messages arrive, and none
    may. The reaper sends a job still queued `JOB_REDELIVERY_S` after its message again."""
    _, alice = await signed_up(api)
    job = (await submit(api, alice)).json()  # no worker yet: the message waits in the stream
    redis_url = settings.redis_url.get_secret_value()  # type: ignore[union-attr]
    async with Redis.from_url(redis_url) as redis:
        with contextlib.suppress(ResponseError):  # the API's broker may have made it
            await redis.xgroup_create(QUEUE_NAME, CONSUMER_GROUP, id="0", mkstream=True)
        # What a worker does before it dies: the message is now its, never acknowledged.
        taken = await redis.xreadgroup(CONSUMER_GROUP, "killed-worker", {QUEUE_NAME: ">"})
    assert len(taken[0][1]) == 1
    worker = workers(settings, JOB_REDELIVERY_S="1")
    ended = await wait_for(api, alice, job["id"], _ended, timeout=60)
    assert ended["status"] == "succeeded", worker.said()
    assert "job_resent" in worker.said()
