"""The cache's front: TTLs, metrics, stampede guard, fail-open under a circuit breaker."""

import asyncio
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import structlog
from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.breaker import CircuitBreaker
from backend.cache.counters import Counter
from backend.cache.entries import CacheConfig, CacheEntry
from backend.cache.keys import entry_key
from backend.cache.memory import MemoryCacheBackend
from backend.cache.prefetch import NearCache, forget, learnt, remember
from backend.cache.redis_backend import RedisCacheBackend
from backend.config import Settings
from backend.metrics import Metrics

log = structlog.get_logger("devora.cache")

T = TypeVar("T")

FLIGHT_LINGER_S = 1.0


class CacheBackend(Protocol):
    """What the front needs of a backend: `RedisCacheBackend` or `MemoryCacheBackend`."""

    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        """The current key suffix of `scope` and the value stored under `stem` with it."""

    async def store(self, scope: str, stem: str, version: str, value: bytes, ttl_s: int) -> None:
        """Store under the version that `lookup` returned."""

    async def invalidate(self, scopes: tuple[str, ...]) -> None: ...

    async def invalidate_prefix(self, prefix: str) -> int: ...

    async def new_epoch(self) -> None: ...


class Cache:
    """Front of a backend: TTLs, metrics, stampede guard, fail-open with a circuit breaker."""

    def __init__(self, settings: Settings, metrics: Metrics, redis: Redis | None) -> None:
        self.metrics = metrics
        self.redis = redis
        self.is_shared = redis is not None
        self.backend: CacheBackend = (
            RedisCacheBackend(redis)
            if redis is not None
            else MemoryCacheBackend(settings.cache_memory_max_bytes)
        )
        # A bigger value is served but never stored: one huge project must not fill the cache.
        self.max_value_bytes = settings.cache_max_value_bytes
        self.ttls: dict[str, int] = {
            entry.name: getattr(settings, f"cache_ttl_{entry.name}")
            for entry in vars(CacheConfig).values()
            if isinstance(entry, CacheEntry)
        }
        self.breaker = CircuitBreaker(
            "redis-cache",
            threshold=3,
            cooldown_s=settings.redis_breaker_cooldown_s,
            on_change=lambda is_open: metrics.redis_degraded.labels("cache").set(int(is_open)),
        )
        self._lost_invalidation = False
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self.near = NearCache(settings.cache_near_max_bytes, settings.cache_near_ttl_s)

    async def _backend_call(
        self, entry: str, call: Callable[[], Awaitable[T]]
    ) -> tuple[bool, T | None]:
        """Run a backend call under the breaker; (False, None) when skipped or failed."""
        if not self.breaker.allows():
            return False, None
        try:
            if self._lost_invalidation:
                # Entries written before the outage may be stale: make them all unreachable.
                await self.backend.new_epoch()
                self._lost_invalidation = False
                log.warning("cache_epoch_replaced", reason="an invalidation was lost")
            result = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            self.metrics.cache_errors.labels(entry).inc()
            self.breaker.failed(exc)
            return False, None
        self.breaker.succeeded()
        return True, result

    async def prefetch(self, stems: dict[str, str | None], counter: Counter | None) -> int | None:
        """Count `counter` (if any) and learn these scopes' versions (and stems' values) in
        one round trip, for the rest of this request; None when Redis is not asked now."""
        backend = self.backend
        if not isinstance(backend, RedisCacheBackend) or self._lost_invalidation:
            return None
        if not self.breaker.allows():
            return None
        try:
            count, found = await backend.lookup_many(stems, counter)
        except (RedisError, OSError, TimeoutError) as exc:
            self.metrics.cache_errors.labels("prefetch").inc()
            self.breaker.failed(exc)
            raise
        self.breaker.succeeded()
        remember(stems, found)
        return count

    _known = staticmethod(learnt)

    async def _lookup(self, entry: str, scope: str, stem: str) -> tuple[bool, str, bytes | None]:
        """(reachable, version, stored value or None)."""
        known = self._known(scope)
        if known is None:
            ok, found = await self._backend_call(entry, lambda: self.backend.lookup(scope, stem))
            if not ok or found is None:
                return False, "", None
            return True, found[0], found[1]
        version = known.version
        key = entry_key(scope, stem, version)
        value = self.near.get(key)
        if value is not None:
            return True, version, value
        if stem in known.values:
            value = known.values[stem]
        else:
            assert isinstance(self.backend, RedisCacheBackend)  # only it prefetches
            get = self.backend.get
            ok, value = await self._backend_call(entry, lambda: get(key))
            if not ok:
                return False, "", None
        if value is not None:
            self.near.put(key, value, self.ttls[entry])
        return True, version, value

    async def get_or_compute(
        self,
        entry: CacheEntry,
        scope: str,
        arg_key: str,
        compute: Callable[[], Awaitable[T]],
        adapter: TypeAdapter[T],
    ) -> T:
        """The cached value; on a miss, computed once per process for concurrent callers."""
        if self.ttls[entry.name] == 0:
            return await compute()  # a TTL of 0 turns this cache off
        found = await self._get(entry, scope, arg_key, compute, adapter)
        return adapter.validate_json(found) if isinstance(found, bytes) else found

    async def get_or_compute_json(
        self,
        entry: CacheEntry,
        scope: str,
        arg_key: str,
        compute: Callable[[], Awaitable[T]],
        adapter: TypeAdapter[T],
    ) -> bytes:
        """The cached value as the JSON it is stored as: a hit is sent as is, never parsed."""
        if self.ttls[entry.name] == 0:
            return adapter.dump_json(await compute())
        found = await self._get(entry, scope, arg_key, compute, adapter)
        return found if isinstance(found, bytes) else adapter.dump_json(found)

    async def _get(
        self,
        entry: CacheEntry,
        scope: str,
        arg_key: str,
        compute: Callable[[], Awaitable[T]],
        adapter: TypeAdapter[T],
    ) -> T | bytes:
        """The stored JSON on a hit, else the computed value (stored for the next caller)."""
        stem = f"{entry.name}:{arg_key}"
        ok, version, stored = await self._lookup(entry.name, scope, stem)
        if stored is not None:
            self.metrics.cache_hits.labels(entry.name).inc()
            return stored
        self.metrics.cache_misses.labels(entry.name).inc()
        if not ok:
            return await compute()  # cache unavailable: straight to the source
        # Misses join only a computation for the same version: it began after any write
        # that produced that version, so a client still reads its own writes.
        flight_key = f"{scope}|{stem}|{version}"
        pending = self._inflight.get(flight_key)
        if pending is not None:
            self.metrics.cache_coalesced.labels(entry.name).inc()
            try:
                return typing.cast(T, await asyncio.shield(pending))
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled, not the one computing
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[flight_key] = future
        try:
            value = await compute()
            payload = adapter.dump_json(value)
            ttl = self.ttls[entry.name]
            stored_now = len(payload) <= self.max_value_bytes
            if stored_now:
                await self._backend_call(
                    entry.name, lambda: self.backend.store(scope, stem, version, payload, ttl)
                )
                self.near.put(entry_key(scope, stem, version), payload, ttl)
            else:
                self.metrics.cache_oversized.labels(entry.name).inc()
        except asyncio.CancelledError:
            future.cancel()  # waiting callers compute for themselves
            self._forget(flight_key, future)
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved; waiting callers re-raise it
            self._forget(flight_key, future)
            raise
        future.set_result(value)
        if not stored_now:
            self._forget(flight_key, future)  # not held for later callers either
            return value
        # A miss whose lookup crossed the store still finds this result for a moment, instead
        # of computing again; it is keyed by version, so it is as fresh as a hit.
        asyncio.get_running_loop().call_later(FLIGHT_LINGER_S, self._forget, flight_key, future)
        return value

    def _forget(self, flight_key: str, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(flight_key) is future:
            del self._inflight[flight_key]

    async def invalidate(self, *scopes: str) -> None:
        """Make every entry of these scopes unreachable before the caller answers."""
        forget(scopes)
        ok, _ = await self._backend_call("invalidate", lambda: self.backend.invalidate(scopes))
        if not ok:
            self._lost_invalidation = True

    async def invalidate_prefix(self, prefix: str) -> int:
        ok, count = await self._backend_call(
            "invalidate", lambda: self.backend.invalidate_prefix(prefix)
        )
        if not ok:
            self._lost_invalidation = True
        return count or 0

    def stats(self) -> dict[str, float]:
        """Hits and misses of this process since start, and their ratio.

        `coalesced` misses waited for another caller's computation of the same value.
        """
        hits = _total(self.metrics.cache_hits)
        misses = _total(self.metrics.cache_misses)
        looked = hits + misses
        return {
            "hits": hits,
            "misses": misses,
            "coalesced": _total(self.metrics.cache_coalesced),
            "hit_ratio": hits / looked if looked else 0.0,
        }


def _total(counter: Any) -> float:
    return float(
        sum(
            sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    )
