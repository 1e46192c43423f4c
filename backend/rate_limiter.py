"""Counting for rate limits: the `limits` library's async storage on Redis, per process without it.

Windows are fixed and aligned to the clock (the window index is part of the key), so one
`INCR`+`EXPIRE` script — a single Redis round trip — yields the count, the remaining budget
and the exact reset time.
"""

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
        """`cache`: a cache on the same Redis, so a hit can carry its prefetch along."""
        self.metrics = metrics
        self.cache = cache
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
                count = None
                if prefetch and self.cache is not None:
                    counter = Counter(self.shared.bridge.prefixed_key(key), expiry)
                    count = await self.cache.prefetch(prefetch, counter)
                if count is None:
                    count = await self.shared.incr(key, expiry)
            except (RedisError, OSError, TimeoutError) as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()
                return count
        self.metrics.rate_limit_local.inc()
        return await self.local.incr(key, expiry)
