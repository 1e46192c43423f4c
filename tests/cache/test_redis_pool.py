"""The Redis pool: bounded, and a caller past the bound waits for a connection, not fails."""

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.redis_client import WaitingConnectionPool


def _client(redis_url: str, *, timeout: float) -> Redis:
    pool = WaitingConnectionPool.from_url(
        redis_url, max_connections=2, timeout=timeout, socket_timeout=5
    )
    return Redis(connection_pool=pool)


async def test_callers_past_the_bound_wait_for_a_released_connection(redis_url: str) -> None:
    client = _client(redis_url, timeout=5)
    try:
        # Each BLPOP holds its connection for 0.3 s; five of them share two connections.
        popped = await asyncio.gather(*(client.blpop([f"empty:{n}"], 0.3) for n in range(5)))
        assert popped == [None] * 5
        pool = client.connection_pool
        assert len(pool._in_use_connections) == 0  # type: ignore[attr-defined]
        assert len(pool._available_connections) == 2  # type: ignore[attr-defined]
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_caller_that_waits_past_the_timeout_gets_a_connection_error(
    redis_url: str,
) -> None:
    client = _client(redis_url, timeout=0.1)
    try:
        holders = [asyncio.create_task(client.blpop([f"empty:{n}"], 1)) for n in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.ping()
        assert await asyncio.gather(*holders) == [None, None]
        assert await client.ping()  # nothing leaked: the pool serves again
    finally:
        await client.aclose()
