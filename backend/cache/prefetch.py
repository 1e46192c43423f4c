"""What a request learnt from Redis up front, and the near-cache read under those versions."""

import asyncio
import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.cache.lru import ByteLRU


@dataclass(frozen=True, slots=True)
class Learnt:
    """A scope's version as Redis gave it to this request, and the entry values sent along."""

    version: str
    values: dict[str, bytes | None]


@dataclass(frozen=True, slots=True)
class Prefetched:
    """What one request learnt, by scope; valid only in the task that learnt it. A scope the
    request invalidates leaves `scopes`, so the rest of the request asks Redis again."""

    task: object
    scopes: dict[str, Learnt]


_PREFETCHED: contextvars.ContextVar[Prefetched | None] = contextvars.ContextVar(
    "cache_known_versions", default=None
)


def remember(stems: dict[str, str | None], found: dict[str, tuple[str, bytes | None]]) -> None:
    """Keep, for the rest of this request, each scope's version and its stem's value."""
    scopes: dict[str, Learnt] = {}
    for scope, (suffix, value) in found.items():
        stem = stems[scope]
        scopes[scope] = Learnt(suffix, {stem: value} if stem else {})
    _PREFETCHED.set(Prefetched(asyncio.current_task(), scopes))


def learnt(scope: str) -> Learnt | None:
    """The version Redis gave this request for `scope`, and the values it sent with it."""
    prefetched = _PREFETCHED.get()
    if prefetched is None or prefetched.task is not asyncio.current_task():
        return None  # none, or a task that inherited another request's context
    return prefetched.scopes.get(scope)


def forget(scopes: tuple[str, ...]) -> None:
    """The rest of this request asks Redis again for these scopes."""
    prefetched = _PREFETCHED.get()
    if prefetched is not None:
        for scope in scopes:
            prefetched.scopes.pop(scope, None)


class NearCache(ByteLRU):
    """Values this process fetched from Redis, by their full versioned key: only ever read
    under a version Redis gave the current request, so never staler than Redis. Bounded in
    bytes (least recently used out first) and in age."""

    def __init__(
        self, max_bytes: int, ttl_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(max_bytes, max_age_s=ttl_s, clock=clock)
