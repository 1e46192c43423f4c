"""The @cached layer on a real redis-server, and in-process without one."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from backend.cache import Cache, CacheConfig, MemoryCacheBackend, cached
from backend.config import Settings
from backend.metrics import Metrics
from backend.redis_client import create_redis
from tests.support.servers import RedisServer


class Item(BaseModel):
    owner: str
    name: str
    version: int


class Items:
    """A stand-in for a service: counts how often the source is really read."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.source: dict[tuple[str, str], int] = {}
        self.reads = 0
        self.source_read = asyncio.Event()  # set once a computation has read the source

    @cached(CacheConfig.PROJECT, scope=lambda owner, name: f"user:{owner}")
    async def get(self, owner: str, name: str) -> Item:
        self.reads += 1
        version = self.source.get((owner, name), 0)
        self.source_read.set()
        await asyncio.sleep(0.01)  # a slow source widens the window for stampedes and races
        return Item(owner=owner, name=name, version=version)

    async def update(self, owner: str, name: str) -> None:
        self.source[(owner, name)] = self.source.get((owner, name), 0) + 1
        await self.cache.invalidate(f"user:{owner}")


@pytest.fixture(params=["redis", "memory"])
async def items(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> AsyncIterator[Items]:
    # A generous Redis timeout: these tests are about caching, not about a loaded machine
    # opening 50 connections at once within the production default of 100 ms.
    settings = make_settings(redis_timeout_s=1.0)
    if request.param == "memory":
        settings = make_settings(redis_url=None)
    redis = create_redis(settings.redis_url, settings)
    yield Items(Cache(settings, Metrics(), redis))
    if redis is not None:
        await redis.aclose()


async def test_second_read_is_a_hit(items: Items) -> None:
    first = await items.get("alice", "a")
    second = await items.get("alice", "a")
    assert first == second
    assert items.reads == 1
    assert items.cache.stats() == {"hits": 1.0, "misses": 1.0, "coalesced": 0.0, "hit_ratio": 0.5}


async def test_arguments_are_part_of_the_key(items: Items) -> None:
    await items.get("alice", "a")
    await items.get("alice", "b")
    assert items.reads == 2


async def test_invalidation_makes_the_next_read_fresh(items: Items) -> None:
    assert (await items.get("alice", "a")).version == 0
    await items.update("alice", "a")
    assert (await items.get("alice", "a")).version == 1
    assert items.reads == 2


async def test_no_cross_user_leakage(items: Items) -> None:
    alice = await items.get("alice", "a")
    bob = await items.get("bob", "a")
    assert (alice.owner, bob.owner) == ("alice", "bob")
    await items.update("bob", "a")
    assert (await items.get("alice", "a")) == alice  # alice's entry survives bob's write
    assert items.reads == 2


async def test_concurrent_misses_compute_once(items: Items) -> None:
    results = await asyncio.gather(*(items.get("alice", "a") for _ in range(50)))
    assert items.reads == 1
    stats = items.cache.stats()
    assert stats["hits"] + stats["coalesced"] == 49
    assert len({result.model_dump_json() for result in results}) == 1


async def test_a_read_after_a_write_never_joins_an_older_computation(items: Items) -> None:
    before = asyncio.create_task(items.get("alice", "a"))
    await asyncio.wait_for(items.source_read.wait(), 5)  # it has read version 0 and is computing
    await items.update("alice", "a")
    after = await items.get("alice", "a")
    assert after.version == 1
    assert (await before).version == 0


async def test_a_failing_computation_reaches_every_waiter(items: Items) -> None:
    class Boom(Exception):
        pass

    async def boom() -> Item:
        await asyncio.sleep(0.01)
        raise Boom

    adapter = __import__("pydantic").TypeAdapter(Item)
    calls = [
        items.cache.get_or_compute(CacheConfig.PROJECT, "user:x", "k", boom, adapter)
        for _ in range(5)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(result, Boom) for result in results)


async def test_entries_expire_after_their_ttl(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(cache_ttl_project=1)
    redis = create_redis(settings.redis_url, settings)
    items = Items(Cache(settings, Metrics(), redis))
    await items.get("alice", "a")
    await asyncio.sleep(1.2)
    await items.get("alice", "a")
    assert items.reads == 2
    assert redis is not None
    await redis.aclose()


async def test_values_are_json_with_a_ttl(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    assert settings.redis_url is not None
    async with Redis.from_url(settings.redis_url.get_secret_value()) as redis:
        items = Items(Cache(settings, Metrics(), redis))
        await items.get("alice", "a")
        keys = [key async for key in redis.scan_iter(match="cache:{user:alice}:*")]
        assert len(keys) == 1
        assert json.loads(await redis.get(keys[0])) == {
            "owner": "alice",
            "name": "a",
            "version": 0,
        }
        assert 0 < await redis.ttl(keys[0]) <= 300


async def test_invalidation_reaches_other_instances(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    redis_a, redis_b = (
        create_redis(settings.redis_url, settings),
        create_redis(settings.redis_url, settings),
    )
    replica_a = Items(Cache(settings, Metrics(), redis_a))
    replica_b = Items(Cache(settings, Metrics(), redis_b))
    replica_b.source = replica_a.source  # one database behind both replicas
    await replica_a.get("alice", "a")
    await replica_b.update("alice", "a")
    assert (await replica_a.get("alice", "a")).version == 1
    for redis in (redis_a, redis_b):
        assert redis is not None
        await redis.aclose()


async def test_prefix_invalidation_counts_scopes(items: Items) -> None:
    await items.get("alice", "a")
    await items.get("bob", "a")
    assert await items.cache.invalidate_prefix("user:") == 2
    await items.get("alice", "a")
    assert items.reads == 3


async def test_redis_outage_serves_fresh_values_and_breaker_recovers(
    make_settings: Callable[..., Settings],
) -> None:
    server = RedisServer().start()
    settings = make_settings(redis_url=server.url, redis_breaker_cooldown_s=0.3)
    redis = create_redis(settings.redis_url, settings)
    metrics = Metrics()
    items = Items(Cache(settings, metrics, redis))
    try:
        await items.get("alice", "a")
        server.stop()
        # Every read is served from the source, with no exception reaching the caller.
        for expected_reads in range(2, 7):
            assert (await items.get("alice", "a")).version == 0
            assert items.reads == expected_reads
        assert items.cache.breaker.is_open
        assert metrics.redis_degraded.labels("cache")._value.get() == 1
        errors_while_open = items.cache.stats()

        server.start()
        await asyncio.sleep(0.4)
        await items.get("alice", "a")  # the probe closes the breaker and refills the entry
        reads = items.reads
        await items.get("alice", "a")
        assert items.reads == reads  # a hit again
        assert not items.cache.breaker.is_open
        assert items.cache.stats()["hits"] > errors_while_open["hits"]
    finally:
        assert redis is not None
        await redis.aclose()
        server.close()


async def test_invalidation_lost_in_an_outage_is_not_served_stale(
    make_settings: Callable[..., Settings], redis_server: RedisServer
) -> None:
    # Redis keeps its data here; only this process loses its connection (bad port → good).
    settings = make_settings(redis_breaker_cooldown_s=0.2)
    redis = create_redis(settings.redis_url, settings)
    items = Items(Cache(settings, Metrics(), redis))
    await items.get("alice", "a")  # cached as version 0 in Redis

    assert redis is not None
    good_pool = redis.connection_pool
    redis.connection_pool = Redis.from_url("redis://127.0.0.1:1").connection_pool
    await items.update("alice", "a")  # the invalidation cannot reach Redis
    redis.connection_pool = good_pool
    await asyncio.sleep(0.3)

    assert (await items.get("alice", "a")).version == 1
    await redis.aclose()


async def test_a_ttl_of_zero_turns_the_cache_off(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(cache_ttl_project=0)
    redis = create_redis(settings.redis_url, settings)
    items = Items(Cache(settings, Metrics(), redis))
    try:
        await items.get("alice", "a")
        await items.get("alice", "a")
    finally:
        if redis is not None:
            await redis.aclose()
    assert items.reads == 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_in_process_cache_is_bounded_in_bytes() -> None:
    backend = MemoryCacheBackend(max_bytes=100_000, clock=Clock())
    for n in range(50):
        version, _ = await backend.lookup("project:a", f"stem{n}")
        await backend.store("project:a", f"stem{n}", version, b"x" * 10_000, 60)
        assert backend.size <= 100_000
    # The newest entries are kept, the oldest went.
    version, newest = await backend.lookup("project:a", "stem49")
    _, oldest = await backend.lookup("project:a", "stem0")
    assert newest == b"x" * 10_000 and oldest is None


async def test_expired_entries_are_swept_without_being_read() -> None:
    clock = Clock()
    backend = MemoryCacheBackend(max_bytes=10_000_000, clock=clock)
    for n in range(20):
        version, _ = await backend.lookup(f"project:{n}", "stem")
        await backend.store(f"project:{n}", "stem", version, b"y" * 100_000, 5)
    assert backend.size > 2_000_000
    clock.now += 6
    await backend.lookup("project:other", "stem")  # any use of the cache sweeps
    assert backend.size == 0


async def test_a_value_over_the_size_bound_is_served_but_never_stored(
    items: Items, make_settings: Callable[..., Settings]
) -> None:
    big = Cache(make_settings(cache_max_value_bytes=1024), Metrics(), None)
    big.backend = items.cache.backend  # the backend under test: Redis or in-process

    class Big(BaseModel):
        text: str

    reads = 0

    class Source:
        cache = big

        @cached(CacheConfig.PROJECT, scope=lambda name: f"project:{name}")
        async def get(self, name: str) -> Big:
            nonlocal reads
            reads += 1
            return Big(text="z" * 5000)

    source = Source()
    assert (await source.get("huge")).text == "z" * 5000
    assert (await source.get("huge")).text == "z" * 5000
    assert reads == 2
    assert _oversized(big) == 2


def _oversized(cache: Cache) -> float:
    return sum(
        sample.value
        for metric in cache.metrics.cache_oversized.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
