"""Following a job: its stored events, then live ones, until its terminal event."""

from collections.abc import AsyncIterator

from backend.generation.events import EventHub
from backend.generation.models import ACTIVE, TERMINAL_EVENTS, Event, Job
from backend.generation.repository import JobRepository


async def follow(jobs: JobRepository, hub: EventHub, job: Job, after: int) -> AsyncIterator[Event]:
    """Stored events after `after`, then live ones, each once, until the terminal event."""
    async with hub.subscribe(job.id) as live:
        seen: set[int] = set()
        while True:
            # Status before events: a job that is over has every event stored already.
            ended = await _is_over(jobs, job)
            for event in await jobs.events_after(job.id, after):
                if event.seq in seen:
                    continue
                seen.add(event.seq)
                after = max(after, event.seq)
                yield event
                if event.type in TERMINAL_EVENTS:
                    return
            if ended:
                return
            async for pushed in live:
                if pushed is None:
                    break  # the hub may have missed events: read the store again
                if pushed.seq in seen:
                    continue
                seen.add(pushed.seq)
                after = max(after, pushed.seq)
                yield pushed
                if pushed.type in TERMINAL_EVENTS:
                    return


async def _is_over(jobs: JobRepository, job: Job) -> bool:
    current = await jobs.get(job.owner_id, job.id)
    return current is None or current.status not in ACTIVE
