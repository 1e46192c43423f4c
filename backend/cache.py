"""The `@cached` layer: Redis shared by every replica, or in-process when Redis is absent.

Keys name their scope (`user:<id>`, `project:<id>`). Each scope has a version token that is
part of every key; invalidating a scope replaces the token, so old entries become unreachable
in O(1) and age out by their TTL. A token, not a counter: a counter that Redis evicts or
expires restarts at a value old entries still use, while a fresh random token never
collides. A global epoch token is part of every key too; it is replaced after Redis comes
back from an outage during which an invalidation was lost.

Redis failing never fails a request: the value is computed from the source and served, and
after repeated failures a circuit breaker skips Redis for a few seconds before probing again.
"""

import asyncio
import functools
import hashlib
import inspect
import json
import secrets
import time
import typing
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import structlog
from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.breaker import CircuitBreaker
from backend.config import Settings
from backend.metrics import Metrics

log = structlog.get_logger("devora.cache")

P = ParamSpec("P")
T = TypeVar("T")

VERSION_TTL_S = 7 * 24 * 3600  # longer than any entry's TTL
SWEEP_INTERVAL_S = 1.0
FLIGHT_LINGER_S = 1.0
EPOCH_KEY = "cache:epoch"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached thing; its TTL is the setting `CACHE_TTL_<NAME>`."""

    name: str


class CacheConfig:
    """Every cached thing by name. Default TTLs live in `Settings` (`cache_ttl_*`)."""

    PROJECT_LIST = CacheEntry("project_list")
    PROJECT = CacheEntry("project")
    USER = CacheEntry("user")
    INVOICES = CacheEntry("invoices")
    PLANS = CacheEntry("plans")
    ADMIN_STATS = CacheEntry("admin_stats")


class CacheBackend(Protocol):
    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        """The current key suffix of `scope` and the value stored under `stem` with it."""

    async def store(self, scope: str, stem: str, version: str, value: bytes, ttl_s: int) -> None:
        """Store under the version that `lookup` returned."""

    async def invalidate(self, scopes: tuple[str, ...]) -> None: ...

    async def invalidate_prefix(self, prefix: str) -> int: ...

    async def new_epoch(self) -> None: ...


def _entry_key(scope: str, stem: str, version: str) -> str:
    # `{scope}` is a cluster hash tag: an entry lives on the same node as its version key.
    return f"cache:{{{scope}}}:{stem}:{version}"


def _version_key(scope: str) -> str:
    return f"cachever:{{{scope}}}"


# One round trip: read (or create) the epoch and the scope's version, then the entry.
_LOOKUP = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[4])
  epoch = redis.call('GET', KEYS[1])
end
local version = redis.call('GET', KEYS[2])
if not version then
  redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4])
  version = redis.call('GET', KEYS[2])
end
local suffix = epoch .. '.' .. version
return {suffix, redis.call('GET', ARGV[1] .. ':' .. suffix)}
"""


class RedisCacheBackend:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._lookup = redis.register_script(_LOOKUP)

    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        prefix = f"cache:{{{scope}}}:{stem}"
        suffix, value = await self._lookup(
            keys=[EPOCH_KEY, _version_key(scope)],
            args=[prefix, "", secrets.token_hex(8), VERSION_TTL_S],  # ARGV[2] unused
        )
        return (suffix.decode() if isinstance(suffix, bytes) else str(suffix)), value

    async def store(self, scope: str, stem: str, version: str, value: bytes, ttl_s: int) -> None:
        await self.redis.set(_entry_key(scope, stem, version), value, ex=ttl_s)

    async def invalidate(self, scopes: tuple[str, ...]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.set(_version_key(scope), secrets.token_hex(8), ex=VERSION_TTL_S)
            await pipe.execute()

    async def invalidate_prefix(self, prefix: str) -> int:
        """Replace the version of every scope starting with `prefix`; scans, so admin only."""
        count = 0
        async for key in self.redis.scan_iter(match=f"cachever:{{{prefix}*", count=500):
            await self.redis.set(key, secrets.token_hex(8), ex=VERSION_TTL_S)
            count += 1
        return count

    async def new_epoch(self) -> None:
        await self.redis.set(EPOCH_KEY, secrets.token_hex(8), ex=VERSION_TTL_S)


class MemoryCacheBackend:
    """The same contract inside one process, bounded in bytes: the least recently used entry
    goes first, and expired entries are swept at most once a second, read or not."""

    def __init__(
        self,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        max_scopes: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_bytes = max_bytes
        self.max_scopes = max_scopes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._versions: OrderedDict[str, str] = OrderedDict()
        self.size = 0  # bytes of keys and values held
        self._swept_at = clock()

    def _version(self, scope: str) -> str:
        version = self._versions.get(scope)
        if version is None:
            version = self._versions[scope] = secrets.token_hex(8)
            # Forgetting a scope's version only makes its entries unreachable: always safe.
            while len(self._versions) > self.max_scopes:
                self._versions.popitem(last=False)
        else:
            self._versions.move_to_end(scope)
        return version

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(key) + len(value)

    def _sweep(self) -> None:
        now = self._clock()
        if now - self._swept_at < SWEEP_INTERVAL_S:
            return
        self._swept_at = now
        for key in [key for key, (expires_at, _) in self._entries.items() if expires_at <= now]:
            self._drop(key)

    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        self._sweep()
        version = self._version(scope)
        key = _entry_key(scope, stem, version)
        found = self._entries.get(key)
        if found is None:
            return version, None
        expires_at, value = found
        if expires_at <= self._clock():
            self._drop(key)
            return version, None
        self._entries.move_to_end(key)
        return version, value

    async def store(self, scope: str, stem: str, version: str, value: bytes, ttl_s: int) -> None:
        self._sweep()
        key = _entry_key(scope, stem, version)
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, value)
        self.size += len(key) + len(value)
        while self.size > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    async def invalidate(self, scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            self._versions[scope] = secrets.token_hex(8)

    async def invalidate_prefix(self, prefix: str) -> int:
        scopes = [scope for scope in self._versions if scope.startswith(prefix)]
        await self.invalidate(tuple(scopes))
        return len(scopes)

    async def new_epoch(self) -> None:
        self._entries.clear()
        self.size = 0


class Cache:
    """Front of a backend: TTLs, metrics, stampede guard, fail-open with a circuit breaker."""

    def __init__(self, settings: Settings, metrics: Metrics, redis: Redis | None) -> None:
        self.metrics = metrics
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
        stem = f"{entry.name}:{arg_key}"
        ok, found = await self._backend_call(entry.name, lambda: self.backend.lookup(scope, stem))
        if ok and found is not None and found[1] is not None:
            self.metrics.cache_hits.labels(entry.name).inc()
            return adapter.validate_json(found[1])
        self.metrics.cache_misses.labels(entry.name).inc()
        if not ok or found is None:
            return await compute()  # cache unavailable: straight to the source
        version = found[0]
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
            stored = len(payload) <= self.max_value_bytes
            if stored:
                await self._backend_call(
                    entry.name, lambda: self.backend.store(scope, stem, version, payload, ttl)
                )
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
        if not stored:
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


class HasCache(Protocol):
    cache: Cache


S = TypeVar("S", bound=HasCache)


def cached(
    entry: CacheEntry,
    *,
    scope: Callable[..., str],
    key: Callable[..., object] | None = None,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Cache an async service method (whose object has `.cache`) by scope and arguments.

    `scope` and `key` receive the method's arguments by name (without `self`); the key
    defaults to all of them, so every argument that changes the result is in it.
    """

    def decorate(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        signature = inspect.signature(method)

        @functools.cache
        def adapter() -> TypeAdapter[T]:
            return TypeAdapter(typing.get_type_hints(method)["return"])

        @functools.wraps(method)
        async def wrapper(self: HasCache, *args: Any, **kwargs: Any) -> T:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)))
            key_value = key(**arguments) if key is not None else arguments
            digest = hashlib.sha256(
                json.dumps(key_value, sort_keys=True, default=str).encode()
            ).hexdigest()[:32]
            return await self.cache.get_or_compute(
                entry, scope(**arguments), digest, lambda: method(self, *args, **kwargs), adapter()
            )

        return wrapper

    return decorate
