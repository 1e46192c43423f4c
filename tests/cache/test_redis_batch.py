"""Auto-pipelining of the lookup script: one round trip for a loop iteration's calls."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backend.redis_batch import ScriptBatcher

# Echoes its key and argument; refuses the argument 'fail' with a script error.
_ECHO = """
if ARGV[1] == 'fail' then return redis.error_reply('refused') end
return {KEYS[1], ARGV[1]}
"""


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_concurrent_calls_share_one_connection_and_get_their_own_reply(
    redis: Redis,
) -> None:
    batcher = ScriptBatcher(redis, redis.register_script(_ECHO))
    replies = await asyncio.gather(*(batcher([f"k{n}"], [str(n)]) for n in range(20)))
    assert replies == [[f"k{n}".encode(), str(n).encode()] for n in range(20)]
    # Twenty calls at once went out as one pipeline, on one pooled connection.
    assert len(redis.connection_pool._available_connections) == 1  # type: ignore[attr-defined]


async def test_a_script_redis_no_longer_knows_is_loaded_again(redis: Redis) -> None:
    batcher = ScriptBatcher(redis, redis.register_script(_ECHO))
    assert await batcher(["a"], ["1"]) == [b"a", b"1"]
    await redis.script_flush()  # as after a Redis restart
    replies = await asyncio.gather(*(batcher([f"k{n}"], [str(n)]) for n in range(5)))
    assert replies == [[f"k{n}".encode(), str(n).encode()] for n in range(5)]


async def test_an_error_reaches_its_own_caller_only(redis: Redis) -> None:
    batcher = ScriptBatcher(redis, redis.register_script(_ECHO))
    ok, failed = await asyncio.gather(
        batcher(["a"], ["1"]), batcher(["b"], ["fail"]), return_exceptions=True
    )
    assert ok == [b"a", b"1"]
    assert isinstance(failed, ResponseError) and "refused" in str(failed)


async def test_a_cancelled_caller_leaves_the_others_answered(redis: Redis) -> None:
    batcher = ScriptBatcher(redis, redis.register_script(_ECHO))
    calls = [asyncio.create_task(batcher([f"k{n}"], [str(n)])) for n in range(3)]
    await asyncio.sleep(0)  # all three are queued
    calls[1].cancel()
    assert await calls[0] == [b"k0", b"0"]
    assert await calls[2] == [b"k2", b"2"]
    with pytest.raises(asyncio.CancelledError):
        await calls[1]


async def test_an_unreachable_redis_fails_every_caller(redis_url: str) -> None:
    client = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    batcher = ScriptBatcher(client, client.register_script(_ECHO))
    try:
        results = await asyncio.gather(
            *(batcher(["k"], [str(n)]) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, Exception) for r in results)
    finally:
        await client.aclose()
