"""Runs one job: claim it, beat, execute its kind, and end it exactly once.

The runner is the queue's one entry point (`run(job_id, owner_id)`). It knows nothing of
HTTP or taskiq. A heartbeat task keeps the claim fresh and brings the owner's cancel request
in; if the claim is lost (the reaper gave the job to another runner) this runner stops
without touching the job. Cancelled from outside (a worker shutting down), it puts the job
back in the queue.
"""

import asyncio
import contextlib
import functools
import multiprocessing
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import structlog

from backend.config import Settings
from backend.db import UNAVAILABLE_ERRORS
from backend.generation.outcome import JobCanceled, JobFailure, Output
from backend.generation.repository import Change, Job
from backend.jobs import JobQueue, QueueUnavailable
from backend.repositories.base import utcnow
from backend.services.generation import GenerationService

log = structlog.get_logger("devora.runner")
T = TypeVar("T")


class JobContext:
    """What an executor may do: report progress, stage files, learn of a cancel, and run
    CPU-bound work in a worker process."""

    def __init__(
        self,
        service: GenerationService,
        job: Job,
        cancel: asyncio.Event,
        pool: Callable[[], ProcessPoolExecutor],
    ) -> None:
        self.service = service
        self.job = job
        self.cancel = cancel
        self._pool = pool
        self._paths: set[str] | None = None

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` in the runner's process pool: pure-Python CPU in a thread would
        hold the GIL and starve this event loop (heartbeats, other jobs, SSE)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), functools.partial(work, *args))

    def check(self) -> None:
        """Raise `JobCanceled` if the owner asked to stop; call between steps."""
        if self.cancel.is_set():
            raise JobCanceled()

    async def _emit(self, kind: str, data: dict[str, Any], **fields: Any) -> None:
        self.check()
        if await self.service.emit(self.job, kind, data, **fields):
            self.cancel.set()
            raise JobCanceled()

    async def progress(self, percent: int, stage: str) -> None:
        await self._emit("progress", {"progress": percent, "stage": stage},
                         progress=percent, stage=stage)  # fmt: skip

    async def add_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Tokens of one model call: on the job now, in the month's usage when it ends."""
        self.job.usage.prompt_tokens += prompt_tokens
        self.job.usage.completion_tokens += completion_tokens
        await self.service.jobs.add_usage(self.job, prompt_tokens, completion_tokens)

    async def message(self, text: str) -> None:
        await self._emit("message", {"text": text})

    async def stage(
        self, files: dict[str, str | None], languages: dict[str, str], *, announce: bool = True
    ) -> None:
        """Keep the job's pending changes (shown by `GET /changes`); announce each file unless
        the executor announced them as it went."""
        self.check()
        changes = [
            Change(path=path, language=languages[path], after=content)
            for path, content in sorted(files.items())
        ]
        await self.service.jobs.stage_changes(self.job.id, changes)
        if announce:
            for path, content in sorted(files.items()):
                await self.announce(path, languages[path], content)

    async def announce(self, path: str, language: str, content: str | None) -> None:
        """A `file` event: what this change does to the project as the job found it."""
        existing = await self._existing_paths()
        action = "deleted" if content is None else "updated" if path in existing else "created"
        size = len((content or "").encode())
        await self._emit(
            "file", {"path": path, "language": language, "size": size, "action": action}
        )

    async def _existing_paths(self) -> set[str]:
        """The project's paths, read once per job (not once per file event)."""
        if self._paths is None:
            self._paths = set()
            if self.job.project_id is not None:
                project = await self.service.projects.get(self.job.owner_id, self.job.project_id)
                self._paths = {file.path for file in project.files} if project else set()
        return self._paths


Executor = Callable[[Job, JobContext], Awaitable[Output]]


def _leave_signals_to_the_parent() -> None:
    """In a pool process: a Ctrl-C reaches the whole process group, but only the runner
    decides when its pool stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class JobRunner:
    def __init__(
        self,
        service: Callable[[], GenerationService],
        executors: dict[str, Executor],
        queue: JobQueue,
        settings: Settings,
    ) -> None:
        self.service = service
        self.executors = executors
        self.queue = queue
        self.settings = settings
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.active: set[asyncio.Task[Any]] = set()
        self.putting_back: set[asyncio.Task[None]] = set()
        self.closing = False
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        """Started on first use; `spawn`, since this process has threads (never fork them)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.settings.worker_concurrency,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_leave_signals_to_the_parent,
            )
        return self._pool

    async def cancel_all(self) -> None:
        """Stop every job this runner holds (shutdown); each puts itself back in the queue.
        Jobs handed over after this are left queued for the next process."""
        self.closing = True
        tasks = list(self.active)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for failed in await asyncio.gather(*self.putting_back, return_exceptions=True):
            if isinstance(failed, BaseException):  # still running in MongoDB: the reaper
                log.error("job_requeue_failed", error=repr(failed))  # retries it
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, job_id: str, owner_id: str) -> None:
        current = asyncio.current_task()
        if self.closing or current is None:
            return
        self.active.add(current)
        try:
            await self._run(job_id, owner_id, current)
        except asyncio.CancelledError:
            if not self.closing:
                raise
            # Our own shutdown: the job is back in the queue; this task ends quietly.
        finally:
            self.active.discard(current)

    async def _run(self, job_id: str, owner_id: str, current: "asyncio.Task[Any]") -> None:
        service = self.service()
        job = await self._claim(service, owner_id, job_id)
        if job is None:
            return  # taken, finished or canceled meanwhile
        bound = log.bind(job_id=job.id, kind=job.kind)
        bound.info("job_started", attempt=job.attempts)
        await service.emit(job, "status", {"status": "running"})
        cancel, lost, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()
        beat = asyncio.create_task(self._beat(service, job, cancel, lost, ended, current))
        try:
            await self._execute(service, job, cancel)
        except asyncio.CancelledError:
            if not lost.is_set():
                # A task of its own, so a second cancel cannot cut it short between the
                # database write and the queue message; `cancel_all` waits for it before
                # the process closes its broker and database.
                putting_back = asyncio.create_task(self._put_back(service, job))
                self.putting_back.add(putting_back)
                putting_back.add_done_callback(self.putting_back.discard)
                await asyncio.shield(putting_back)
            raise
        finally:
            ended.set()  # as well as the cancel, which was seen lost
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _claim(self, service: GenerationService, owner_id: str, job_id: str) -> Job | None:
        """Claim the job, waiting for the database while it is unreachable: the message is
        in hand and is acknowledged once this task ends, so giving up here would leave the
        job queued with no message left to run it."""
        delay = 0.5
        while True:
            try:
                return await service.jobs.claim(owner_id, job_id, self.runner_id)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("job_claim_waiting", job_id=job_id, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _execute(self, service: GenerationService, job: Job, cancel: asyncio.Event) -> None:
        try:
            executor = self.executors[job.kind]
            output = await executor(job, JobContext(service, job, cancel, self.pool))
            if cancel.is_set():
                raise JobCanceled()
            await service.end(job, "succeeded", output=output)
        except JobCanceled:
            await service.end(job, "canceled")
        except JobFailure as failure:
            await service.end(job, "failed", error=(failure.code, failure.message))
        except asyncio.CancelledError:
            raise
        except UNAVAILABLE_ERRORS as exc:
            # The database went away mid-job: nothing of the job reached the project, and it
            # cannot be ended now. It stops beating, so once the database is back a reaper
            # retries it (or, on its last attempt, fails it with `worker_lost`).
            log.error("job_interrupted", job_id=job.id, error=str(exc))
        except Exception:
            log.exception("job_crashed", job_id=job.id)
            await service.end(job, "failed", error=("internal_error", "The job failed"))

    async def _beat(
        self,
        service: GenerationService,
        job: Job,
        cancel: asyncio.Event,
        lost: asyncio.Event,
        ended: asyncio.Event,
        main: "asyncio.Task[Any]",
    ) -> None:
        """Beat until the job's task ends. `ended` stops it even when the cancel is lost: seen
        with the database down and the CPU starved, the beat went on after its cancel, and the
        task waiting for it held its worker slot (for the whole minute the test waited)."""
        while True:
            await asyncio.sleep(self.settings.job_heartbeat_s)
            if ended.is_set():
                return
            try:
                requested = await service.jobs.heartbeat(job.owner_id, job.id, self.runner_id)
            except Exception as exc:  # a missed beat is retried; the reaper judges staleness
                log.warning("job_heartbeat_failed", job_id=job.id, error=str(exc))
                continue
            if requested is None:
                log.warning("job_claim_lost", job_id=job.id)
                lost.set()
                main.cancel()
                return
            if requested:
                cancel.set()

    async def _put_back(self, service: GenerationService, job: Job) -> None:
        """Shutting down mid-job: the job goes back to the queue for another runner."""
        if await service.jobs.requeue(job, "requeued"):
            await service.emit(job, "status", {"status": "queued"})
            await send_or_mark(service, self.queue, job)
            log.info("job_requeued", job_id=job.id)


async def send_or_mark(service: GenerationService, queue: JobQueue, job: Job) -> None:
    """Hand a job that is queued in MongoDB to the queue; while the queue is unreachable, mark
    it so that a reaper sends it once Redis is back (`resend_unsent`)."""
    try:
        await queue.enqueue(job)
    except QueueUnavailable:
        await service.jobs.mark_unsent(job)
        log.warning("job_not_enqueued", job_id=job.id)


async def resend_unsent(service: GenerationService, queue: JobQueue) -> int:
    """Send the messages an outage kept from the queue; a job sent twice is run once (its
    claim is conditional), a job never sent would wait forever."""
    sent = 0
    for job in await service.jobs.unsent():
        try:
            await queue.enqueue(job)
        except QueueUnavailable:
            return sent  # still unreachable: the next round tries again
        await service.jobs.mark_sent(job)
        sent += 1
    return sent


async def resend_unclaimed(service: GenerationService, queue: JobQueue, settings: Settings) -> int:
    """Send again the message of a job still queued `JOB_REDELIVERY_S` after it was sent.

    A worker killed after reading messages and before claiming their jobs takes them with it:
    the broker hands such a message on only when it has been idle that long *and* a new message
    arrives (taskiq-redis reclaims after a read that found something). A job sent twice still
    runs once; one waiting behind a long queue is merely sent again, once per interval."""
    before = utcnow() - timedelta(seconds=settings.job_redelivery_s)
    sent = 0
    for job in await service.jobs.unclaimed(before):
        if await service.jobs.take_for_resending(job):
            await send_or_mark(service, queue, job)
            log.warning("job_resent", job_id=job.id, sent_at=str(job.sent_at))
            sent += 1
    return sent


async def reap_once(service: GenerationService, queue: JobQueue, settings: Settings) -> int:
    """Jobs whose runner stopped beating: retried once, then failed with `worker_lost`."""
    await resend_unsent(service, queue)
    if not queue.is_in_process:  # in process, a message is lost only with the process
        await resend_unclaimed(service, queue, settings)
    before = utcnow() - timedelta(seconds=settings.job_stale_after_s)
    reaped = 0
    for job in await service.jobs.stale(before):
        if job.attempts < settings.job_max_attempts:
            if await service.jobs.requeue(job, "retrying"):
                await service.emit(job, "status", {"status": "queued"})
                await send_or_mark(service, queue, job)
                log.warning("job_retried", job_id=job.id, attempt=job.attempts)
        else:
            await service.end(
                job, "failed",
                error=("worker_lost", "The worker running this job stopped, twice"),
            )  # fmt: skip
        reaped += 1
    return reaped


async def reap_forever(
    service: Callable[[], GenerationService], queue: JobQueue, settings: Settings
) -> None:
    while True:
        try:
            await reap_once(service(), queue, settings)
        except Exception as exc:
            log.warning("job_reaper_failed", error=str(exc))
        await asyncio.sleep(settings.job_reaper_interval_s)


async def recover_queued(service: GenerationService, queue: JobQueue) -> None:
    """In process, the queue lives in memory: jobs left queued by the last run go in again."""
    for job in await service.jobs.queued():
        await queue.enqueue(job)


def job_runner(
    service: Callable[[], GenerationService], queue: JobQueue, settings: Settings
) -> JobRunner:
    """The runner with every job kind this build knows (agentic when a model is configured)."""
    from backend.generation.agents.job import agentic_executor
    from backend.generation.fullstack.job import run_fullstack

    executors: dict[str, Executor] = {"fullstack": run_fullstack}
    if settings.llm_configured:
        executors["agentic"] = agentic_executor(settings)
    return JobRunner(service, executors, queue, settings)


async def keep_queue_depth(
    service: Callable[[], GenerationService], metrics: Any, prepared: "asyncio.Future[None]"
) -> None:
    """Refresh the queued-jobs gauge every few seconds (one indexed count)."""
    await prepared
    while True:
        with contextlib.suppress(Exception):
            metrics.job_queue_depth.set(await service().jobs.count_queued())
        await asyncio.sleep(5)
