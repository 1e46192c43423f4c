"""The signed-in request path (issue #16): one Redis round trip for the rate-limit count, the
user record and the caller's cache versions; a near-cache that is never staler than Redis,
across replicas; cached pages sent as their stored bytes."""

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import redis as redis_sync

from backend.cache import Cache, NearCache
from backend.cache import Counter as RateCounter
from backend.config import Settings
from backend.main import create_app
from backend.metrics import Metrics
from backend.redis_client import create_redis
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, bearer, login, signed_up
from tests.support.servers import RedisServer
from tests.support.settings import GENEROUS_LIMITS

ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "Admin-Pass-1"


def _commands(url: str) -> Counter[str]:
    with redis_sync.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def test_a_cached_list_read_is_one_redis_round_trip(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    async with open_client(create_app(make_settings(**GENEROUS_LIMITS))) as client:
        _, auth = await signed_up(client)
        await client.post("/api/v2/projects", json={"name": "One"}, headers=auth)
        for _ in range(2):  # the page computed and stored, then held near
            assert (await client.get("/api/v2/projects", headers=auth)).status_code == 200
        before = _commands(redis_url)
        response = await client.get("/api/v2/projects", headers=auth)
        delta = _commands(redis_url) - before
    assert response.status_code == 200 and response.json()["meta"]["total"] == 1
    for own in ("info", "hello"):  # the counting client's own commands
        delta.pop(own, None)
    # One script call; inside it the counter and four reads (epoch, two versions, the user).
    assert delta["evalsha"] == 1, delta
    assert set(delta) <= {"evalsha", "incrby", "expire", "get"}, delta
    assert delta["get"] == 4, delta


async def test_a_cached_page_is_the_body_the_model_serialises(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**GENEROUS_LIMITS)
    uncached = settings.model_copy(update={"cache_ttl_project_list": 0})
    async with open_client(create_app(settings)) as cached_client:
        _, auth = await signed_up(cached_client)
        for name in ("Ünïcode ✓", "Second"):
            body = {"name": name, "description": 'a "quoted" line'}
            await cached_client.post("/api/v2/projects", json=body, headers=auth)
        miss = await cached_client.get("/api/v2/projects", headers=auth)
        hit = await cached_client.get("/api/v2/projects", headers=auth)
        async with open_client(create_app(uncached)) as plain_client:
            plain = await plain_client.get("/api/v2/projects", headers=auth)
    assert miss.status_code == hit.status_code == plain.status_code == 200
    assert miss.content == hit.content == plain.content
    for response in (hit, plain):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-ratelimit-limit"]
    assert [p["name"] for p in json.loads(hit.content)["data"]] == ["Second", "Ünïcode ✓"]


async def test_changes_on_another_replica_take_effect_on_the_next_request(
    make_settings: Callable[..., Settings],
) -> None:
    """Replica A holds the user and the page near; each change made through replica B is
    seen by A's very next request: a new project, a password change, a disabled account."""
    settings = make_settings(
        **GENEROUS_LIMITS, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD
    )
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(open_client(create_app(settings)))
        b = await stack.enter_async_context(open_client(create_app(settings)))
        user, auth = await signed_up(a)
        for _ in range(2):
            assert (await a.get("/api/v2/projects", headers=auth)).json()["meta"]["total"] == 0

        await b.post("/api/v2/projects", json={"name": "From B"}, headers=auth)
        assert (await a.get("/api/v2/projects", headers=auth)).json()["meta"]["total"] == 1

        changed = await b.post(
            "/api/v2/auth/me/password",
            json={"current_password": PASSWORD, "new_password": "Another-Pass-42"},
            headers=auth,
        )
        assert changed.status_code == 204
        stale = await a.get("/api/v2/projects", headers=auth)
        assert stale.status_code == 401 and stale.json()["code"] == "invalid_token"

        fresh = bearer(await login(a, user["email"], "Another-Pass-42"))
        assert (await a.get("/api/v2/projects", headers=fresh)).status_code == 200
        root = bearer(await login(b, ADMIN_EMAIL, ADMIN_PASSWORD))
        disabled = await b.patch(
            f"/api/v2/admin/users/{user['id']}", json={"is_active": False}, headers=root
        )
        assert disabled.status_code == 200
        refused = await a.get("/api/v2/projects", headers=fresh)
        # Disabling an account also ends its sessions.
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"


async def test_a_task_started_during_a_request_does_not_reuse_its_versions(
    make_settings: Callable[..., Settings],
) -> None:
    """Versions learnt by one request are that request's: a background task that inherits
    its context (and may run minutes later) asks Redis again."""
    settings = make_settings()
    redis = create_redis(settings.redis_url, settings)
    assert redis is not None
    cache = Cache(settings, Metrics(), redis)
    try:
        counted = await cache.prefetch({"user:x": None}, RateCounter("LIMITS:test:x", 60))
        assert counted == 1
        assert cache._known("user:x") is not None

        async def later() -> object:
            return cache._known("user:x")

        assert await asyncio.create_task(later()) is None
        await cache.invalidate("user:x")  # and the request itself forgets what it changed
        assert cache._known("user:x") is None
    finally:
        await redis.aclose()


def test_the_near_cache_is_bounded_in_bytes_and_age() -> None:
    now = [0.0]
    near = NearCache(max_bytes=100, ttl_s=10, clock=lambda: now[0])
    near.put("a", b"x" * 40, ttl_s=60)
    near.put("b", b"y" * 40, ttl_s=5)
    assert near.get("a") == b"x" * 40  # now the most recently used
    near.put("c", b"z" * 40, ttl_s=60)  # over 100 bytes: "b" goes
    assert near.get("b") is None and near.get("a") is not None and near.size <= 100
    now[0] = 10.5  # past the near-cache's own age limit, whatever the entry's TTL
    assert near.get("a") is None and near.get("c") is None
    assert near.size == 0
    off = NearCache(max_bytes=0, ttl_s=10)
    off.put("a", b"x", ttl_s=60)
    assert off.get("a") is None


async def test_without_redis_nothing_is_prefetched(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_url=None, **GENEROUS_LIMITS)
    async with open_client(create_app(settings)) as client:
        _, auth = await signed_up(client)
        await client.post("/api/v2/projects", json={"name": "Local"}, headers=auth)
        pages = [await client.get("/api/v2/projects", headers=auth) for _ in range(2)]
    assert [p.json()["meta"]["total"] for p in pages] == [1, 1]
    assert isinstance(pages[0], httpx.Response)


async def test_with_a_cache_redis_of_its_own_the_lookups_run_beside_the_count(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    """Production runs the cache on a Redis of its own: one round trip to each, both at once,
    and the near-cache still serves under the versions the cache's Redis gave."""
    cache_server = RedisServer().start()
    try:
        settings = make_settings(**GENEROUS_LIMITS, cache_redis_url=cache_server.url)
        async with open_client(create_app(settings)) as client:
            _, auth = await signed_up(client)
            await client.post("/api/v2/projects", json={"name": "One"}, headers=auth)
            for _ in range(2):
                assert (await client.get("/api/v2/projects", headers=auth)).status_code == 200
            before = _commands(redis_url), _commands(cache_server.url)
            response = await client.get("/api/v2/projects", headers=auth)
            counts = _commands(redis_url) - before[0]
            lookups = _commands(cache_server.url) - before[1]
    finally:
        cache_server.close()
    assert response.status_code == 200 and response.json()["meta"]["total"] == 1
    for delta in (counts, lookups):
        for own in ("info", "hello"):
            delta.pop(own, None)
    assert counts["evalsha"] == 1 and "get" not in counts, counts  # the limits script alone
    assert lookups["evalsha"] == 1 and lookups["get"] == 4 and "incrby" not in lookups, lookups
