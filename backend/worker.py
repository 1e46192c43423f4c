"""`python -m backend worker`: run generation jobs from the Redis queue until told to stop.

SIGTERM or SIGINT stops taking messages, waits up to `WORKER_SHUTDOWN_TIMEOUT_S` for the jobs
in hand, then cancels the rest, which put themselves back in the queue. The reaper (stale
heartbeats → retry once, then `worker_lost`) runs in every worker; its updates are
conditional, so several workers reaping at once do no harm.
"""

import asyncio
import contextlib
import signal

import structlog
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from backend.config import Settings
from backend.generation.runner import job_runner, reap_forever
from backend.logs import configure_logging
from backend.main import build_resources, close_resources, prepare_database
from backend.metrics import Metrics
from backend.services.generation import GenerationService, generation_service

log = structlog.get_logger("devora.worker")


async def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    configure_logging(settings)
    if settings.redis_url is None:
        raise SystemExit("REDIS_URL is not set: without Redis, jobs run inside the API process")
    resources = build_resources(settings, Metrics())
    await prepare_database(resources)

    def service() -> GenerationService:
        return generation_service(resources)

    queue = resources.queue
    queue.broker.is_worker_process = True
    queue.serve(job_runner(service, queue, settings))
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
    reaper = asyncio.create_task(reap_forever(service, queue, settings), name="reaper")
    log.info("worker_started", concurrency=concurrency or settings.worker_concurrency)
    try:
        await receiver.listen(stop)
    finally:
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
        await queue.stop_reading()
        await queue.drain()
        await queue.broker.shutdown()
        await close_resources(resources)
        log.info("worker_stopped")
