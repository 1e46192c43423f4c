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

from backend.cache.core import Cache
from backend.cache.counters import Counter
from backend.cache.decorators import cached, cached_json
from backend.cache.entries import CacheConfig
from backend.cache.memory import MemoryCacheBackend
from backend.cache.prefetch import NearCache

__all__ = [
    "Cache",
    "CacheConfig",
    "Counter",
    "MemoryCacheBackend",
    "NearCache",
    "cached",
    "cached_json",
]
