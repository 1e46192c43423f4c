"""Counting for rate limits: the `limits` library's async storage on Redis, per process without it.

Windows are fixed and aligned to the clock (the window index is part of the key), so one
`INCR`+`EXPIRE` script — a single Redis round trip — yields the count, the remaining budget
and the exact reset time.
"""

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.breaker import CircuitBreaker
from backend.cache import Cache, Counter
from backend.config import Settings
from backend.metrics import Metrics

log = structlog.get_logger("devora.rate_limit")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int


class RateLimiter:
    """Shared counters in Redis; per-process counters at once when Redis is absent or failing."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        redis: Redis | None,
        *,
        cache: Cache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`cache`: the app's cache. On this Redis, a signed-in request's cache prefetch rides
        in the same round trip as its count; on a Redis of its own, it runs beside it."""
        self.metrics = metrics
        self.cache = cache
        self._shares_redis = cache is not None and redis is not None and cache.redis is redis
        self._clock = clock
        self.shared: RedisStorage | None = None
        if redis is not None and settings.redis_url is not None:
            # Reuse the app's pool: its short socket timeouts bound every hit.
            self.shared = RedisStorage(
                "async+" + settings.redis_url.get_secret_value(),
                implementation="redispy",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
        self.local = MemoryStorage()
        self.breaker = CircuitBreaker(
            "redis-rate-limit",
            threshold=1,
            cooldown_s=settings.redis_breaker_cooldown_s,
            on_change=lambda is_open: metrics.redis_degraded.labels("rate_limit").set(int(is_open)),
        )

    async def hit(
        self,
        item: RateLimitItem,
        *identifiers: str,
        prefetch: dict[str, str | None] | None = None,
    ) -> Decision:
        """Count one request against `item` for these identifiers; with `prefetch`, the
        cache learns those scopes in the same Redis round trip (`Cache.prefetch`)."""
        now = self._clock()
        window = item.get_expiry()
        key = item.key_for(*identifiers, str(int(now // window)))
        count = await self._incr(key, window, prefetch)
        return Decision(
            allowed=count <= item.amount,
            limit=item.amount,
            remaining=max(0, item.amount - count),
            reset_after_s=max(1, math.ceil(window - now % window)),
        )

    async def _incr(self, key: str, expiry: int, prefetch: dict[str, str | None] | None) -> int:
        if self.shared is not None and self.breaker.allows():
            try:
                count = await self._shared_incr(key, expiry, prefetch)
            except (RedisError, OSError, TimeoutError) as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()
                return count
        elif prefetch:
            await self._prefetch_alone(prefetch)
        self.metrics.rate_limit_local.inc()
        return await self.local.incr(key, expiry)

    async def _shared_incr(
        self, key: str, expiry: int, prefetch: dict[str, str | None] | None
    ) -> int:
        assert self.shared is not None
        if not prefetch or self.cache is None:
            return await self.shared.incr(key, expiry)
        if self._shares_redis:
            counter = Counter(self.shared.bridge.prefixed_key(key), expiry)
            count = await self.cache.prefetch(prefetch, counter)
            return count if count is not None else await self.shared.incr(key, expiry)
        # Two Redis servers: both round trips at once. The prefetch stays in this task, where
        # the versions it learns are kept for the rest of the request.
        counting = asyncio.ensure_future(self.shared.incr(key, expiry))
        try:
            await self._prefetch_alone(prefetch)
        except BaseException:
            counting.cancel()
            raise
        return await counting

    async def _prefetch_alone(self, prefetch: dict[str, str | None]) -> None:
        """The cache's lookups without a count; its failure is the cache's (fail open)."""
        if self.cache is None:
            return
        # A failure is recorded by the cache's breaker; the request reads through the source.
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await self.cache.prefetch(prefetch, None)
