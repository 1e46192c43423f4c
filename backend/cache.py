"""The `@cached` layer: Redis shared by every replica, or in-process when Redis is absent.

Keys name their scope (`user:<id>`, `project:<id>`). Each scope has a version token that is
part of every key; invalidating a scope replaces the token, so old entries become unreachable
in O(1) and age out by their TTL. A token, not a counter: a counter that Redis evicts or
expires restarts at a value old entries still use, while a fresh random token never
collides. A global epoch token is part of every key too; it is replaced after Redis comes
back from an outage during which an invalidation was lost.

Redis failing never fails a request: the value is computed from the source and served, and
after repeated failures a circuit breaker skips Redis for a few seconds before probing again.

A signed-in request reads its caller's scope versions (and the user record) in the same Redis
round trip as its rate-limit count (`Cache.prefetch`, called by the rate limiter). Under a
version Redis gave *this* request, an entry may be served from a small in-process near-cache:
the version is authoritative and current, so an invalidation by any replica takes effect on
the very next request everywhere; the near-cache only saves fetching bytes Redis would return.
"""

import asyncio
import contextvars
import functools
import hashlib
import inspect
import secrets
import time
import typing
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import orjson
import structlog
from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.breaker import CircuitBreaker
from backend.config import Settings
from backend.metrics import Metrics
from backend.redis_batch import ScriptBatcher
from backend.unique_ids import UniqueIds

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


# One round trip at the start of a request, or for one lookup. KEYS[1]: a rate-limit counter
# to count ('' for none), KEYS[2]: the epoch, KEYS[3..]: one version key per scope. ARGV[1]:
# the counter's window, ARGV[2]: a fresh token, ARGV[3]: the TTL of versions, ARGV[4..]: per
# scope, the key prefix of an entry to read with it ('' for the version alone). The counter is
# the `limits` library's fixed window (its incr_expire.lua): INCRBY, then EXPIRE when new.
# Returns {count, suffix_1, value_1, suffix_2, value_2, ...}.
_LOOKUP = """
local function current(key)
  local value = redis.call('GET', key)
  if value then return value end
  redis.call('SET', key, ARGV[2], 'EX', ARGV[3])
  return ARGV[2]
end
local count = 0
if KEYS[1] ~= '' then
  count = redis.call('INCRBY', KEYS[1], 1)
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
end
local epoch = current(KEYS[2])
local out = {count}
for i = 3, #KEYS do
  local suffix = epoch .. '.' .. current(KEYS[i])
  local value = false
  if ARGV[i + 1] ~= '' then value = redis.call('GET', ARGV[i + 1] .. ':' .. suffix) end
  out[#out + 1] = suffix
  out[#out + 1] = value
end
return out
"""


@dataclass(frozen=True, slots=True)
class Counter:
    """A rate-limit counter to count in the same round trip: its Redis key and window."""

    key: str
    window_s: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisCacheBackend:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._lookup = ScriptBatcher(redis, redis.register_script(_LOOKUP))
        self._tokens = UniqueIds(prefix_chars=8)

    async def lookup(self, scope: str, stem: str) -> tuple[str, bytes | None]:
        _, found = await self.lookup_many({scope: stem})
        return found[scope]

    async def lookup_many(
        self, stems: dict[str, str | None], counter: Counter | None = None
    ) -> tuple[int, dict[str, tuple[str, bytes | None]]]:
        """Count `counter`, then each scope's key suffix and the value of its stem (if any)."""
        scopes = list(stems)
        reply = await self._lookup(
            [counter.key if counter else "", EPOCH_KEY, *map(_version_key, scopes)],
            [
                counter.window_s if counter else 0,
                self._tokens.new(),  # used only where a version is missing
                VERSION_TTL_S,
                *(f"cache:{{{scope}}}:{stem}" if stem else "" for scope, stem in stems.items()),
            ],
        )
        found = {
            scope: (_text(reply[1 + 2 * n]), reply[2 + 2 * n]) for n, scope in enumerate(scopes)
        }
        return int(reply[0]), found

    async def get(self, key: str) -> bytes | None:
        return typing.cast(bytes | None, await self.redis.get(key))

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


# This request's task, and per scope the version Redis gave it with the values sent along.
_KNOWN: contextvars.ContextVar[
    tuple[object, dict[str, tuple[str, dict[str, bytes | None]]]] | None
] = contextvars.ContextVar("cache_known_versions", default=None)


class NearCache:
    """Values this process fetched from Redis, by their full versioned key: only ever read
    under a version Redis gave the current request, so never staler than Redis. Bounded in
    bytes (least recently used out first) and in age."""

    def __init__(
        self, max_bytes: int, ttl_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.size = 0

    def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if self.max_bytes <= 0:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + min(ttl_s, self.ttl_s), value)
        self.size += len(key) + len(value)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(key) + len(value)


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
        known: dict[str, tuple[str, dict[str, bytes | None]]] = {}
        for scope, (suffix, value) in found.items():
            stem = stems[scope]
            known[scope] = (suffix, {stem: value} if stem else {})
        _KNOWN.set((asyncio.current_task(), known))
        return count

    def _known(self, scope: str) -> tuple[str, dict[str, bytes | None]] | None:
        """The version Redis gave this request for `scope`, and the values it sent with it."""
        known = _KNOWN.get()
        if known is None or known[0] is not asyncio.current_task():
            return None  # none, or a task that inherited another request's context
        return known[1].get(scope)

    async def _lookup(self, entry: str, scope: str, stem: str) -> tuple[bool, str, bytes | None]:
        """(reachable, version, stored value or None)."""
        known = self._known(scope)
        if known is None:
            ok, found = await self._backend_call(entry, lambda: self.backend.lookup(scope, stem))
            if not ok or found is None:
                return False, "", None
            return True, found[0], found[1]
        version, sent = known
        key = _entry_key(scope, stem, version)
        value = self.near.get(key)
        if value is not None:
            return True, version, value
        if stem in sent:
            value = sent[stem]
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
                self.near.put(_entry_key(scope, stem, version), payload, ttl)
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
        known = _KNOWN.get()
        if known is not None:
            for scope in scopes:  # the rest of this request asks Redis again
                known[1].pop(scope, None)
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


def _digest(key_value: object) -> str:
    # orjson: a signed-in request digests three calls, and `json.dumps` cost ~8 µs each.
    text = orjson.dumps(key_value, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(text).hexdigest()[:32]


class _CachedCall:
    """What `cached` and `cached_json` share: the key of a call from its arguments."""

    def __init__(
        self,
        entry: CacheEntry,
        method: Callable[..., Awaitable[Any]],
        scope: Callable[..., str],
        key: Callable[..., object] | None,
    ) -> None:
        self.entry = entry
        self.method = method
        self.signature = inspect.signature(method)
        self.scope = scope
        self.key = key
        parameters = list(self.signature.parameters.values())[1:]
        self.names = [p.name for p in parameters]
        self.defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        # Plain named parameters only: then a call's arguments are found without `bind`.
        self.is_plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)

    @functools.cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(typing.get_type_hints(self.method)["return"])

    def locate(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        """(scope, argument digest) of a call, `self` included in `args`."""
        positional = args[1:]
        arguments = {**self.defaults, **dict(zip(self.names, positional, strict=False)), **kwargs}
        exact = len(positional) <= len(self.names) and len(arguments) == len(self.names)
        if not (self.is_plain and exact):
            bound = self.signature.bind(*args, **kwargs)  # raises what the call would
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(self.signature.parameters)))
        key_value = self.key(**arguments) if self.key is not None else arguments
        return self.scope(**arguments), _digest(key_value)

    def stem(self, **arguments: Any) -> tuple[str, str]:
        """(scope, stem) of a call by its arguments without `self`: what `prefetch` takes."""
        scope, digest = self.locate(None, **arguments)
        return scope, f"{self.entry.name}:{digest}"


def _decorator(
    entry: CacheEntry,
    scope: Callable[..., str],
    key: Callable[..., object] | None,
    as_json: bool,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    def decorate(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        call = _CachedCall(entry, method, scope, key)

        @functools.wraps(method)
        async def wrapper(self: HasCache, *args: Any, **kwargs: Any) -> Any:
            scope_name, digest = call.locate(self, *args, **kwargs)
            fetch = self.cache.get_or_compute_json if as_json else self.cache.get_or_compute
            return await fetch(
                entry, scope_name, digest, lambda: method(self, *args, **kwargs), call.adapter
            )

        wrapper.cached_call = call  # type: ignore[attr-defined]
        return wrapper

    return decorate


def cached(
    entry: CacheEntry,
    *,
    scope: Callable[..., str],
    key: Callable[..., object] | None = None,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Cache an async service method (whose object has `.cache`) by scope and arguments.

    `scope` and `key` receive the method's arguments by name (without `self`); the key
    defaults to all of them, so every argument that changes the result is in it. The wrapper's
    `cached_call.stem(**arguments)` names the entry a call reads, for `Cache.prefetch`.
    """
    return _decorator(entry, scope, key, as_json=False)


def cached_json(
    entry: CacheEntry,
    *,
    scope: Callable[..., str],
    key: Callable[..., object] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[bytes]]]:
    """`cached`, answering the JSON of the method's result: a hit is the stored bytes, so a
    handler can send it without parsing and re-serialising (`api_v2.routing.JSONBytes`)."""
    return _decorator(entry, scope, key, as_json=True)
