"""Keeping the queue honest: jobs whose runner stopped beating are retried once, then failed
with `worker_lost`; messages an outage or a killed worker lost are sent again.

Every update here is conditional, so several reapers (one per worker) do no harm."""

import asyncio
import contextlib
from datetime import timedelta

import structlog

from backend.config import Settings
from backend.generation.lifecycle import Lifecycle
from backend.generation.models import Job
from backend.generation.repository import JobRepository
from backend.jobs import JobQueue, QueueUnavailable
from backend.metrics import Metrics
from backend.repositories.base import utcnow

log = structlog.get_logger("devora.runner")

# How often the queued-jobs gauge is refreshed (one indexed count).
QUEUE_DEPTH_INTERVAL_S = 5


async def send_or_mark(jobs: JobRepository, queue: JobQueue, job: Job) -> None:
    """Hand a job that is queued in MongoDB to the queue; while the queue is unreachable, mark
    it so that a reaper sends it once Redis is back (`resend_unsent`)."""
    try:
        await queue.enqueue(job)
    except QueueUnavailable:
        await jobs.mark_unsent(job)
        log.warning("job_not_enqueued", job_id=job.id)


async def resend_unsent(jobs: JobRepository, queue: JobQueue) -> int:
    """Send the messages an outage kept from the queue; a job sent twice is run once (its
    claim is conditional), a job never sent would wait forever."""
    sent = 0
    for job in await jobs.unsent():
        try:
            await queue.enqueue(job)
        except QueueUnavailable:
            return sent  # still unreachable: the next round tries again
        await jobs.mark_sent(job)
        sent += 1
    return sent


async def resend_unclaimed(jobs: JobRepository, queue: JobQueue, settings: Settings) -> int:
    """Send again the message of a job still queued `JOB_REDELIVERY_S` after it was sent.

    A worker killed after reading messages and before claiming their jobs takes them with it:
    the broker hands such a message on only when it has been idle that long *and* a new message
    arrives (taskiq-redis reclaims after a read that found something). A job sent twice still
    runs once; one waiting behind a long queue is merely sent again, once per interval."""
    before = utcnow() - timedelta(seconds=settings.job_redelivery_s)
    sent = 0
    for job in await jobs.unclaimed(before):
        if await jobs.take_for_resending(job):
            await send_or_mark(jobs, queue, job)
            log.warning("job_resent", job_id=job.id, sent_at=str(job.sent_at))
            sent += 1
    return sent


async def reap_once(lifecycle: Lifecycle, queue: JobQueue, settings: Settings) -> int:
    """Jobs whose runner stopped beating: retried once, then failed with `worker_lost`."""
    jobs = lifecycle.jobs
    await resend_unsent(jobs, queue)
    if not queue.is_in_process:  # in process, a message is lost only with the process
        await resend_unclaimed(jobs, queue, settings)
    before = utcnow() - timedelta(seconds=settings.job_stale_after_s)
    reaped = 0
    for job in await jobs.stale(before):
        if job.attempts < settings.job_max_attempts:
            if await jobs.requeue(job, "retrying"):
                await lifecycle.emit(job, "status", {"status": "queued"})
                await send_or_mark(jobs, queue, job)
                log.warning("job_retried", job_id=job.id, attempt=job.attempts)
        else:
            lost = ("worker_lost", "The worker running this job stopped, twice")
            await lifecycle.end(job, "failed", error=lost)
        reaped += 1
    return reaped


async def reap_forever(lifecycle: Lifecycle, queue: JobQueue, settings: Settings) -> None:
    while True:
        try:
            await reap_once(lifecycle, queue, settings)
        except Exception as exc:
            log.warning("job_reaper_failed", error=str(exc))
        await asyncio.sleep(settings.job_reaper_interval_s)


async def recover_queued(jobs: JobRepository, queue: JobQueue) -> None:
    """In process, the queue lives in memory: jobs left queued by the last run go in again."""
    for job in await jobs.queued():
        await queue.enqueue(job)


async def keep_queue_depth(
    jobs: JobRepository, metrics: Metrics, prepared: "asyncio.Future[None]"
) -> None:
    """Refresh the queued-jobs gauge until cancelled."""
    await prepared
    while True:
        with contextlib.suppress(Exception):
            metrics.job_queue_depth.set(await jobs.count_queued())
        await asyncio.sleep(QUEUE_DEPTH_INTERVAL_S)
