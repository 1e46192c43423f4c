"""Two Redis roles: cache pressure on CACHE_REDIS_URL never reaches counters or the queue."""

from collections.abc import Callable

import httpx
import pytest
import redis as redis_sync

from backend.config import Settings
from backend.main import create_app
from tests.support.app_client import open_client
from tests.support.factories import PASSWORD, register, signed_up
from tests.support.servers import RedisServer
from tests.support.settings import GENEROUS_LIMITS

LOGIN = "/api/v2/auth/login"


@pytest.mark.usefixtures("fresh_minute_window")
async def test_cache_pressure_never_evicts_a_login_lockout(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    cache = RedisServer("--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru").start()
    try:
        settings = make_settings(
            **{**GENEROUS_LIMITS, "rate_limit_auth_login": "5/minute"},
            cache_redis_url=cache.url,
            trusted_proxies=["203.0.113.0/24"],
        )
        async with open_client(create_app(settings)) as client:
            victim = await register(client)
            for n in range(5):
                await client.post(
                    LOGIN,
                    json={"email": victim["email"], "password": "Wrong-1a"},
                    headers={"x-forwarded-for": f"198.51.100.{n}"},
                )
            await fill_the_cache(client)
            locked = await client.post(
                LOGIN,
                json={"email": victim["email"], "password": PASSWORD},
                headers={"x-forwarded-for": "198.51.100.99"},
            )
        with redis_sync.Redis.from_url(cache.url) as cache_client:
            evicted = int(cache_client.info("stats")["evicted_keys"])
            cache_keys = [key.decode() for key in cache_client.keys("*")]
        with redis_sync.Redis.from_url(redis_url) as counters:
            counter_keys = [key.decode() for key in counters.keys("*")]
    finally:
        cache.close()
    assert evicted > 0  # the cache really was under pressure
    assert (locked.status_code, locked.json()["code"]) == (429, "rate_limited")
    assert all(key.startswith("cache") for key in cache_keys)
    assert not any(key.startswith("cache") for key in counter_keys)


async def fill_the_cache(client: httpx.AsyncClient) -> None:
    """Twelve projects of 400 KB, each read: about 5 MB of cache entries."""
    _, headers = await signed_up(client)
    for n in range(12):
        created = await client.post(
            "/api/v2/projects",
            headers=headers,
            json={"name": f"big {n}", "files": [{"path": "big.txt", "content": "x" * 400_000}]},
        )
        assert created.status_code == 201, created.text
        read = await client.get(f"/api/v2/projects/{created.json()['id']}", headers=headers)
        assert read.status_code == 200
