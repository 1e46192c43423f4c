"""Job event streams are bounded: so many per job and per user across replicas, and in time.

The apps here queue to Redis and no worker runs, so accepted jobs stay queued and their
streams stay open until they are closed, or end by themselves."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest

from backend.config import Settings
from backend.generation.errors import TooManyStreams
from backend.generation.streams import GRACE_S, StreamSlots
from backend.main import create_app
from backend.metrics import Metrics
from backend.redis_client import create_redis
from tests.support.factories import signed_up
from tests.support.jobs import JOBS, events, submit
from tests.support.servers import ThreadedServer, free_port
from tests.support.settings import GENEROUS_LIMITS

SMALL_CAPS = {"job_streams_per_job": 2, "job_streams_per_user": 3, "max_active_jobs_free": 10}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**GENEROUS_LIMITS, **SMALL_CAPS)


@pytest.fixture
def serve() -> Iterator[Callable[[Settings], str]]:
    """Start an API replica on real HTTP (streams stay open across requests); its URL."""
    servers: list[ThreadedServer] = []

    def start(settings: Settings) -> str:
        server = ThreadedServer(create_app(settings)).start()
        servers.append(server)
        for _ in range(200):
            if httpx.get(f"{server.url}/readyz").status_code == 200:
                break
            time.sleep(0.05)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def streams() -> AsyncIterator[AsyncExitStack]:
    """Streams opened in a test, closed at its end."""
    async with AsyncExitStack() as stack:
        yield stack


async def opened(
    stack: AsyncExitStack, client: httpx.AsyncClient, headers: dict[str, str], job_id: str
) -> httpx.Response:
    """A stream of the job, left open (its status and headers read; a refusal's body too)."""
    request = client.build_request("GET", f"{JOBS}/{job_id}/events", headers=headers)
    response = await client.send(request, stream=True)
    stack.push_async_callback(response.aclose)
    if response.status_code != 200:
        await response.aread()
    return response


def refused(response: httpx.Response) -> bool:
    return (
        response.status_code == 429
        and response.json()["code"] == "too_many_streams"
        and response.headers["content-type"] == "application/problem+json"
        and 1 <= int(response.headers["Retry-After"]) <= 600
    )


async def jobs(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[str]:
    return [(await submit(client, headers)).json()["id"] for _ in range(n)]


async def test_a_job_has_at_most_its_cap_of_streams_and_a_user_at_most_theirs(
    settings: Settings, serve: Callable[[Settings], str], streams: AsyncExitStack
) -> None:
    async with httpx.AsyncClient(base_url=serve(settings), timeout=30) as client:
        _, alice = await signed_up(client)
        _, bob = await signed_up(client)
        first, second, third = await jobs(client, alice, 3)
        (bobs,) = await jobs(client, bob, 1)
        on_first = [await opened(streams, client, alice, first) for _ in range(3)]
        on_second = await opened(streams, client, alice, second)
        on_third = await opened(streams, client, alice, third)
        of_bob = await opened(streams, client, bob, bobs)
    assert [r.status_code for r in on_first[:2]] == [200, 200]
    assert refused(on_first[2])
    assert on_second.status_code == 200  # another job of the same user: under both caps
    assert refused(on_third)  # the user's third stream was the last one
    assert of_bob.status_code == 200


async def test_closing_a_stream_frees_its_slot(
    settings: Settings, serve: Callable[[Settings], str], streams: AsyncExitStack
) -> None:
    async with httpx.AsyncClient(base_url=serve(settings), timeout=30) as client:
        _, alice = await signed_up(client)
        (job,) = await jobs(client, alice, 1)
        held = [await opened(streams, client, alice, job) for _ in range(2)]
        assert [r.status_code for r in held] == [200, 200]
        assert refused(await opened(streams, client, alice, job))
        await held[0].aclose()  # the client goes away mid-stream
        deadline = time.monotonic() + 10
        while (again := await opened(streams, client, alice, job)).status_code != 200:
            assert time.monotonic() < deadline, again.text
            await again.aclose()
            await asyncio.sleep(0.05)
        assert refused(await opened(streams, client, alice, job))


async def test_a_stream_ends_after_its_lifetime_and_resumes_after_its_last_event(
    make_settings: Callable[..., Settings], serve: Callable[[Settings], str]
) -> None:
    settings = make_settings(**GENEROUS_LIMITS, **SMALL_CAPS, job_stream_max_s=1)
    async with httpx.AsyncClient(base_url=serve(settings), timeout=30) as client:
        _, alice = await signed_up(client)
        (job,) = await jobs(client, alice, 1)
        started = time.monotonic()
        async with asyncio.timeout(15):
            first = await events(client, alice, job)
        lasted = time.monotonic() - started
        # Ended by time, not by the job: its slot is free again at once.
        again = [await events(client, alice, job) for _ in range(3)]
        canceled = await client.post(f"{JOBS}/{job}/cancel", headers=alice)
        async with asyncio.timeout(15):
            rest = await events(client, alice, job, last=int(first[-1]["id"]))
    assert [(e["event"], e["data"]) for e in first] == [("status", {"status": "queued"})]
    assert 1 <= lasted < 10
    assert again == [first] * 3
    assert canceled.status_code == 200
    assert int(rest[0]["id"]) == int(first[-1]["id"]) + 1
    assert rest[-1]["event"] == "canceled"


async def test_replicas_on_one_redis_share_the_counts(
    settings: Settings, serve: Callable[[Settings], str], streams: AsyncExitStack
) -> None:
    async with (
        httpx.AsyncClient(base_url=serve(settings), timeout=30) as a,
        httpx.AsyncClient(base_url=serve(settings), timeout=30) as b,
    ):
        _, alice = await signed_up(a)
        first, second, third = await jobs(a, alice, 3)
        on_a = [await opened(streams, a, alice, first) for _ in range(2)]
        first_on_b = await opened(streams, b, alice, first)
        second_on_b = await opened(streams, b, alice, second)
        third_on_a = await opened(streams, a, alice, third)
    assert [r.status_code for r in on_a] == [200, 200]
    assert refused(first_on_b)  # the job's cap, reached on the other replica
    assert second_on_b.status_code == 200
    assert refused(third_on_a)  # the user's cap, reached across both


async def test_a_slot_never_given_back_lapses_after_the_streams_lifetime(
    settings: Settings,
) -> None:
    """A replica killed mid-stream releases nothing: its slots expire in Redis by themselves."""
    now = [time.time()]
    redis = create_redis(settings.redis_url, settings)
    assert redis is not None
    slots = StreamSlots(settings, Metrics(), redis, clock=lambda: now[0])
    try:
        await slots.acquire("u1", "j1")
        await slots.acquire("u1", "j1")  # neither is ever released
        with pytest.raises(TooManyStreams):
            await slots.acquire("u1", "j1")
        assert 0 < await redis.ttl("streams:{u1}") <= settings.job_stream_max_s + GRACE_S + 1
        now[0] += settings.job_stream_max_s + GRACE_S + 1
        lease = await slots.acquire("u1", "j1")
        await lease.release()
        await lease.release()  # twice is harmless
        assert await redis.zcard("streams:{u1}:job:j1") == 0
    finally:
        await redis.aclose()


@pytest.mark.parametrize("redis", ["absent", "unreachable"])
async def test_without_redis_each_process_counts_its_own_streams(
    make_settings: Callable[..., Settings], redis: str
) -> None:
    url = None if redis == "absent" else f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(**SMALL_CAPS, redis_url=url)
    metrics = Metrics()
    client = create_redis(settings.redis_url, settings)
    slots = StreamSlots(settings, metrics, client)
    try:
        held = [await slots.acquire("u1", "j1") for _ in range(2)]
        with pytest.raises(TooManyStreams) as over:
            await slots.acquire("u1", "j1")
        await held[0].release()
        await slots.acquire("u1", "j1")
    finally:
        if client is not None:
            await client.aclose()
    assert int(over.value.headers["Retry-After"]) == settings.job_stream_max_s
    degraded = metrics.registry.get_sample_value("redis_degraded", {"component": "job_streams"})
    assert degraded == (None if redis == "absent" else 1)
