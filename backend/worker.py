"""`python -m backend worker`: run generation jobs from the Redis queue until told to stop.

Redis going away pauses taking messages; the worker listens again once it is back.
SIGTERM or SIGINT stops taking messages, waits up to `WORKER_SHUTDOWN_TIMEOUT_S` for the jobs
in hand, then cancels the rest, which put themselves back in the queue. The reaper (stale
heartbeats → retry once, then `worker_lost`) runs in every worker; its updates are
conditional, so several workers reaping at once do no harm.
"""

import asyncio
import contextlib
import signal

import structlog
from redis.exceptions import RedisError
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from backend.config import Settings
from backend.generation.kinds import executors
from backend.generation.reaper import reap_forever
from backend.generation.runner import JobRunner
from backend.logs import configure_logging
from backend.main import build_resources, close_resources, prepare_database
from backend.metrics import Metrics
from backend.services.registry import build_generation

log = structlog.get_logger("devora.worker")

QUEUE_RETRY_MAX_S = 5.0


async def listen_until_stopped(receiver: Receiver, stop: asyncio.Event) -> None:
    """Take messages until `stop`. An unreachable Redis pauses this, never ends it: the
    worker listens again (backing off to `QUEUE_RETRY_MAX_S`) once Redis answers, and the
    jobs it already runs carry on meanwhile (they need MongoDB, not Redis)."""
    loop = asyncio.get_running_loop()
    delay = 0.5
    while not stop.is_set():
        started = loop.time()
        try:
            await receiver.listen(stop)
            return
        except Exception as exc:
            if not _queue_unreachable(exc):
                raise
            if loop.time() - started > 10 * QUEUE_RETRY_MAX_S:
                delay = 0.5  # it had been listening for a while: a new outage starts short
            log.error("queue_unreachable", error=str(exc), retry_in_s=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, QUEUE_RETRY_MAX_S)


def _queue_unreachable(exc: BaseException) -> bool:
    """A Redis or network error, alone or grouped by the receiver's task group."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_queue_unreachable(inner) for inner in exc.exceptions)
    return isinstance(exc, RedisError | OSError)


async def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    configure_logging(settings)
    if settings.redis_url is None:
        raise SystemExit("REDIS_URL is not set: without Redis, jobs run inside the API process")
    resources = build_resources(settings, Metrics())
    await prepare_database(resources)
    lifecycle = build_generation(resources).lifecycle
    queue = resources.queue
    queue.broker.is_worker_process = True
    runner = JobRunner(lifecycle, executors(settings), queue, settings)
    runner.verifier.prepare()  # the sandbox's dependencies, built while the worker listens
    queue.serve(runner)
    receiver = Receiver(
        queue.broker,
        max_async_tasks=concurrency or settings.worker_concurrency,
        ack_type=AcknowledgeType.WHEN_EXECUTED,
        wait_tasks_timeout=settings.worker_shutdown_timeout_s,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reaper = asyncio.create_task(reap_forever(lifecycle, queue, settings), name="reaper")
    log.info("worker_started", concurrency=concurrency or settings.worker_concurrency)
    try:
        await listen_until_stopped(receiver, stop)
    finally:
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
        await queue.stop_reading()
        await queue.drain()
        await queue.broker.shutdown()
        await close_resources(resources)
        log.info("worker_stopped")
