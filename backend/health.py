"""Readiness checks of the backing services, each bounded in time."""

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.db import Mongo

OK = "ok"
EMBEDDED = "embedded"
UNAVAILABLE = "unavailable"
STARTING = "starting"


async def check_mongodb(mongo: Mongo) -> str:
    try:
        await mongo.ping()
    except Exception:
        return UNAVAILABLE
    # Unique indexes guard against races, so serving before they exist is not ready.
    return OK if mongo.ready.is_set() else STARTING


async def check_redis(redis: Redis | None, timeout_s: float) -> str:
    if redis is None:
        return EMBEDDED
    try:
        await asyncio.wait_for(redis.ping(), timeout_s)
    except (RedisError, OSError, TimeoutError):
        return UNAVAILABLE
    return OK


async def readiness(mongo: Mongo, redis: Redis | None, redis_timeout_s: float) -> dict[str, str]:
    """Every check's outcome, run concurrently."""
    mongodb, redis_state = await asyncio.gather(
        check_mongodb(mongo), check_redis(redis, redis_timeout_s)
    )
    return {"mongodb": mongodb, "redis": redis_state}


def is_ready(checks: dict[str, str]) -> bool:
    return all(state in (OK, EMBEDDED) for state in checks.values())
