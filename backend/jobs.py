"""The job queue: taskiq on a Redis stream (acknowledged after the job ran), or in process.

With `REDIS_URL` the API only enqueues and `python -m backend worker` processes run the jobs;
a message is acknowledged once its job has run, so one held by a worker that died is handed
to another worker (after `JOB_REDELIVERY_S`, when taskiq-redis next finds new messages; the
reaper also sends again a job still queued that long after its message was sent). Without
Redis (`make run`) taskiq's in-memory broker runs jobs inside the API process: the same task,
the same runner.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError
from taskiq import AsyncBroker, InMemoryBroker, TaskiqDepends, TaskiqState
from taskiq.exceptions import SendTaskError
from taskiq_redis import RedisStreamBroker

from backend.config import Settings

TASK_NAME = "devora.run_generation_job"
QUEUE_NAME = "devora:generation-jobs"
CONSUMER_GROUP = "devora-workers"

JobRun = Callable[[str, str], Awaitable[None]]


class Runner(Protocol):
    async def run(self, job_id: str, owner_id: str) -> None: ...

    async def cancel_all(self) -> None: ...


class QueueUnavailable(Exception):
    """The job could not be handed to the queue."""


async def _run_generation_job(
    job_id: str, owner_id: str, state: TaskiqState = TaskiqDepends()
) -> None:
    run: JobRun = state.run_job
    await run(job_id, owner_id)


def create_broker(settings: Settings) -> AsyncBroker:
    """The broker for this deployment, with the one task registered."""
    broker: AsyncBroker
    if settings.redis_url is None:
        broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency)
    else:
        timeout = max(settings.redis_timeout_s, 1.0)
        broker = RedisStreamBroker(
            settings.redis_url.get_secret_value(),
            queue_name=QUEUE_NAME,
            consumer_group_name=CONSUMER_GROUP,
            # A group created after messages were queued still reads them.
            consumer_id="0",
            xread_block=1000,
            idle_timeout=settings.job_redelivery_s * 1000,
            unacknowledged_lock_timeout=30,
            socket_timeout=timeout + 2,  # above the 1 s XREADGROUP block
            socket_connect_timeout=timeout,
        )
    broker.register_task(_run_generation_job, task_name=TASK_NAME)
    return broker


class JobQueue:
    """Hands job ids to the broker; an unreachable queue is `QueueUnavailable`, fast."""

    def __init__(self, broker: AsyncBroker, timeout_s: float) -> None:
        self.broker = broker
        self.timeout_s = timeout_s
        self.runner: Runner | None = None

    @property
    def is_in_process(self) -> bool:
        return isinstance(self.broker, InMemoryBroker)

    def serve(self, runner: Runner) -> None:
        """Where this process runs jobs (in process, or as a worker): who runs them."""
        self.runner = runner
        self.broker.state.run_job = runner.run

    async def enqueue(self, job: Any) -> None:
        task = self.broker.find_task(TASK_NAME)
        assert task is not None
        try:
            await asyncio.wait_for(task.kiq(job.id, job.owner_id), self.timeout_s)
        except (SendTaskError, RedisError, OSError, TimeoutError) as exc:
            raise QueueUnavailable(str(exc)) from exc

    async def stop_reading(self) -> None:
        """Close this worker's connections before it sends anything more.

        A stream read that was cancelled here can still be blocked on the Redis server; the
        next message added (the job this worker puts back) would be delivered to it, and so
        to a consumer that is going away. Closing the connections ends that read."""
        pool = getattr(self.broker, "connection_pool", None)
        if pool is not None:
            await pool.disconnect()

    async def drain(self) -> None:
        """Stop the jobs this process still runs; each puts itself back in the queue."""
        if self.runner is not None:
            await self.runner.cancel_all()
