"""One change stream per process on `job_events`, fanned out to the SSE followers of each job.

A follower subscribes first, then reads the stored events: the stream is open before that
read, so every event is either stored by then or delivered live (duplicates are dropped by
sequence number). If the stream breaks, every follower is told (`None`) and reads the store
again from where it was; the stream resumes from its last token, or reopens.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from pymongo.errors import PyMongoError

from backend.generation.models import TERMINAL_EVENTS, Event

log = structlog.get_logger("devora.events")

QUEUE_SIZE = 1000


class Subscription:
    """Live events of one job, in the order the database committed them; `None` = re-read."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)

    def push(self, event: Event | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A follower this far behind drops what is queued and reads the store again.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event | None:
        return await self.queue.get()


class EventHub:
    def __init__(self, collection: Any, metrics_gauge: Any | None = None) -> None:
        self.collection = collection
        self.gauge = metrics_gauge
        self._subscribers: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._open = asyncio.Event()

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """Live events of `job_id` from the moment this returns."""
        subscription = Subscription()
        self._subscribers.setdefault(job_id, set()).add(subscription)
        if self.gauge is not None:
            self.gauge.inc()
        try:
            self._start()
            await asyncio.wait_for(self._open.wait(), 30)
            yield subscription
        finally:
            followers = self._subscribers.get(job_id)
            if followers is not None:
                followers.discard(subscription)
                if not followers:
                    del self._subscribers[job_id]
            if self.gauge is not None:
                self.gauge.dec()

    async def wait_for_end(self, job_id: str, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) for the job's terminal event to be committed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self.subscribe(job_id) as live:
                async for event in live:
                    if event is not None and event.type in TERMINAL_EVENTS:
                        return

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="job-events-watch")

    async def close(self) -> None:
        """Bounded: closing the client afterwards ends any read still in flight."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)

    def _broadcast_resync(self) -> None:
        for followers in self._subscribers.values():
            for subscription in followers:
                subscription.push(None)

    async def _watch(self) -> None:
        resume: Any = None
        delay = 0.5
        pipeline = [{"$match": {"operationType": "insert"}}]
        current = asyncio.current_task()
        while True:
            try:
                async with await self.collection.watch(
                    pipeline, resume_after=resume, max_await_time_ms=1000
                ) as stream:
                    self._open.set()
                    delay = 0.5
                    while stream.alive:  # ends when invalidated: a new stream is opened
                        change = await stream.try_next()
                        # PyMongo can swallow a cancel landing mid-read and resume the stream
                        # (its cleanup makes a new request): `async for` would then go on
                        # forever, and the shutdown waiting on it. So ask every second.
                        if current is not None and current.cancelling():
                            raise asyncio.CancelledError()
                        if change is not None:
                            resume = stream.resume_token
                            self._deliver(change["fullDocument"])
            except PyMongoError as exc:
                if current is not None and current.cancelling():
                    raise asyncio.CancelledError() from exc
                log.warning("job_events_stream_broken", error=str(exc), retry_in_s=delay)
                self._open.clear()
                self._broadcast_resync()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                if delay >= 10:
                    resume = None  # the token may have left the oplog: start afresh

    def _deliver(self, doc: dict[str, Any]) -> None:
        followers = self._subscribers.get(doc["job_id"])
        if not followers:
            return
        event = Event(seq=doc["seq"], type=doc["type"], data=doc["data"])
        for subscription in followers:
            subscription.push(event)
