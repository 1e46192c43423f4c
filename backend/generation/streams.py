"""Slots for open job event streams: at most so many per job and per user, across replicas.

Each open stream is a member of two sorted sets in Redis, its job's and its user's, scored by
the moment its slot lapses (the stream's end plus a grace): a replica that dies mid-stream
holds its slots only until then. Without Redis, or while it fails, each process counts its own
streams, as the rate limits do.
"""

import asyncio
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Self, TypeVar

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.breaker import CircuitBreaker
from backend.config import Settings
from backend.generation.errors import TooManyStreams
from backend.metrics import Metrics
from backend.unique_ids import UniqueIds

# A slot outlives its stream by this much: time to release it, and replicas' clocks apart.
GRACE_S = 5.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# KEYS[1]: the job's streams, KEYS[2]: its user's (one hash tag). ARGV: now, the new slot's
# expiry, its member, the job's cap, the user's cap, the keys' TTL. Lapsed members go first.
# Returns {0} when taken, else {1 (the job's cap) or 2 (the user's), that set's soonest expiry}.
_ACQUIRE = """
for i = 1, 2 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1]) end
for i = 1, 2 do
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then
    return {i, redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2]}
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return {0}
"""

Keys = tuple[str, str]
T = TypeVar("T")


class StreamLease:
    """One open stream's slot, held until released (twice is harmless) or until it lapses."""

    def __init__(
        self, slots: "StreamSlots", keys: Keys, member: str, *, shared: bool, ends_at: float
    ) -> None:
        self._slots, self._keys, self._member, self._shared = slots, keys, member, shared
        self.ends_at = ends_at  # on the event loop's clock: when the stream must end
        self._released = False

    async def release(self) -> None:
        """Give the slot back; shielded, so a stream cancelled by its client still does."""
        if self._released:
            return
        with anyio.CancelScope(shield=True):
            await self._slots.release(self._keys, self._member, shared=self._shared)
        self._released = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


class StreamSlots:
    """Counts open streams per job and per user in Redis, per process without it."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        redis: Redis | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_job, self.per_user = settings.job_streams_per_job, settings.job_streams_per_user
        self.max_s = settings.job_stream_max_s
        self.metrics = metrics
        self.redis = redis
        self._acquire = redis.register_script(_ACQUIRE) if redis is not None else None
        self._local = _LocalSlots()
        self._ids = UniqueIds()
        self._clock = clock
        self.breaker = CircuitBreaker(
            "redis-job-streams",
            threshold=1,
            cooldown_s=settings.redis_breaker_cooldown_s,
            on_change=lambda is_open: metrics.redis_degraded.labels("job_streams").set(
                int(is_open)
            ),
        )

    async def acquire(self, user_id: str, job_id: str) -> StreamLease:
        """A slot for one more stream of `job_id`, or 429 `too_many_streams`."""
        keys = (f"streams:{{{user_id}}}:job:{job_id}", f"streams:{{{user_id}}}")
        member, now = self._ids.new(), self._clock()
        expiry = now + self.max_s + GRACE_S
        full, soonest, shared = await self._take(keys, member, now, expiry)
        if full:
            which = "job" if full == 1 else "user"
            self.metrics.rate_limit_rejections.labels(f"job_streams_per_{which}").inc()
            cap = self.per_job if full == 1 else self.per_user
            raise TooManyStreams(
                f"At most {cap} event streams may be open per {which}; close one first",
                retry_after_s=max(1, math.ceil(soonest - GRACE_S - now)),
            )
        ends_at = asyncio.get_running_loop().time() + self.max_s
        return StreamLease(self, keys, member, shared=shared, ends_at=ends_at)

    async def _take(
        self, keys: Keys, member: str, now: float, expiry: float
    ) -> tuple[int, float, bool]:
        """Which cap refuses (0: none) and that set's soonest expiry; whether Redis counted."""
        if self._acquire is not None and self.breaker.allows():
            args = (now, expiry, member, self.per_job, self.per_user, math.ceil(expiry - now))
            try:
                reply = await self._acquire(keys=list(keys), args=args)
            except REDIS_ERRORS as exc:
                self._failed(exc, "acquire")
            else:
                self.breaker.succeeded()
                return int(reply[0]), float(reply[1]) if reply[0] else expiry, True
        return *self._local.take(keys, (self.per_job, self.per_user), member, now, expiry), False

    async def release(self, keys: Keys, member: str, *, shared: bool) -> None:
        """Free a slot where it was counted; one Redis could not free lapses by itself."""
        if not shared:
            self._local.drop(keys, member)
            return
        assert self.redis is not None
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.zrem(key, member)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._failed(exc, "release")

    def _failed(self, error: BaseException, operation: str) -> None:
        self.metrics.dependency_failures.labels("redis", f"job_streams_{operation}").inc()
        self.breaker.failed(error)  # logs once when it opens; counted per process meanwhile


class _LocalSlots:
    """The same sets in this process: member → expiry, per key."""

    def __init__(self) -> None:
        self._sets: dict[str, dict[str, float]] = {}

    def take(
        self, keys: Keys, caps: tuple[int, int], member: str, now: float, expiry: float
    ) -> tuple[int, float]:
        live = [{m: e for m, e in self._sets.get(key, {}).items() if e > now} for key in keys]
        for which, (members, cap) in enumerate(zip(live, caps, strict=True), start=1):
            if len(members) >= cap:
                return which, min(members.values())
        for key, members in zip(keys, live, strict=True):
            members[member] = expiry
            self._sets[key] = members
        return 0, expiry

    def drop(self, keys: Keys, member: str) -> None:
        for key in keys:
            members = self._sets.get(key)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self._sets[key]


async def until(ends_at: float, events: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """`events` until the loop's clock reaches `ends_at`, which ends them quietly; closed after."""
    try:
        while True:
            bound = asyncio.timeout_at(ends_at)
            try:
                async with bound:
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if bound.expired():
                    return
                raise
            yield event
    finally:
        if isinstance(events, AsyncGenerator):
            await events.aclose()
