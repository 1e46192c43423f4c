"""Runs one job: claim it, beat, execute its kind, and end it exactly once.

The runner is the queue's one entry point (`run(job_id, owner_id)`). It knows nothing of
HTTP or taskiq. A heartbeat task keeps the claim fresh and brings the owner's cancel request
in; if the claim is lost (the reaper gave the job to another runner) this runner stops
without touching the job. Cancelled from outside (a worker shutting down), it puts the job
back in the queue.
"""

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import structlog

from backend.config import Settings
from backend.db import UNAVAILABLE_ERRORS
from backend.generation.context import Executor, JobContext
from backend.generation.lifecycle import Lifecycle
from backend.generation.models import Job
from backend.generation.outcome import JobCanceled, JobFailure
from backend.generation.reaper import send_or_mark
from backend.generation.sandbox.verify import Verifier
from backend.jobs import JobQueue

log = structlog.get_logger("devora.runner")


def _leave_signals_to_the_parent() -> None:
    """In a pool process: a Ctrl-C reaches the whole process group, but only the runner
    decides when its pool stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class JobRunner:
    def __init__(
        self,
        lifecycle: Lifecycle,
        executors: dict[str, Executor],
        queue: JobQueue,
        settings: Settings,
    ) -> None:
        self.lifecycle = lifecycle
        self.executors = executors
        self.queue = queue
        self.settings = settings
        self.verifier = Verifier(settings)  # one sandbox (and its run slots) per process
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
            # Still `running` in MongoDB: the reaper retries it.
            if isinstance(failed, BaseException):
                log.error("job_requeue_failed", error=repr(failed))
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
        job = await self._claim(owner_id, job_id)
        if job is None:
            return  # taken, finished or canceled meanwhile
        bound = log.bind(job_id=job.id, kind=job.kind)
        bound.info("job_started", attempt=job.attempts)
        await self.lifecycle.emit(job, "status", {"status": "running"})
        cancel, lost, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()
        beat = asyncio.create_task(self._beat(job, cancel, lost, ended, current))
        try:
            await self._execute(job, cancel)
        except asyncio.CancelledError:
            if not lost.is_set():
                # A task of its own, so a second cancel cannot cut it short between the
                # database write and the queue message; `cancel_all` waits for it before
                # the process closes its broker and database.
                putting_back = asyncio.create_task(self._put_back(job))
                self.putting_back.add(putting_back)
                putting_back.add_done_callback(self.putting_back.discard)
                await asyncio.shield(putting_back)
            raise
        finally:
            ended.set()  # stops the beat even if the cancel below never reaches it
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _claim(self, owner_id: str, job_id: str) -> Job | None:
        """Claim the job, waiting for the database while it is unreachable: the message is
        in hand and is acknowledged once this task ends, so giving up here would leave the
        job queued with no message left to run it."""
        delay = 0.5
        while True:
            try:
                return await self.lifecycle.jobs.claim(owner_id, job_id, self.runner_id)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("job_claim_waiting", job_id=job_id, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _execute(self, job: Job, cancel: asyncio.Event) -> None:
        end = self.lifecycle.end
        try:
            output = await self.executors[job.kind](job, self._context(job, cancel))
            if cancel.is_set():
                raise JobCanceled()
            await end(job, "succeeded", output=output)
        except JobCanceled:
            await end(job, "canceled")
        except JobFailure as failure:
            await end(job, "failed", error=(failure.code, failure.message))
        except asyncio.CancelledError:
            raise
        except UNAVAILABLE_ERRORS as exc:
            # The database went away mid-job: nothing of the job reached the project, and it
            # cannot be ended now. It stops beating, so once the database is back a reaper
            # retries it (or, on its last attempt, fails it with `worker_lost`).
            log.error("job_interrupted", job_id=job.id, error=str(exc))
        except Exception:
            log.exception("job_crashed", job_id=job.id)
            await end(job, "failed", error=("internal_error", "The job failed"))

    def _context(self, job: Job, cancel: asyncio.Event) -> JobContext:
        lifecycle = self.lifecycle
        return JobContext(
            job,
            cancel,
            self.pool,
            lifecycle=lifecycle,
            jobs=lifecycle.jobs,
            projects=lifecycle.projects,
            messages=lifecycle.messages,
            verifier=self.verifier,
        )

    async def _beat(
        self,
        job: Job,
        cancel: asyncio.Event,
        lost: asyncio.Event,
        ended: asyncio.Event,
        main: "asyncio.Task[Any]",
    ) -> None:
        """Beat until the job's task ends. `ended` stops it even when its own cancel is lost
        (a starved loop with the database down), so a finished job never holds a worker slot."""
        while True:
            await asyncio.sleep(self.settings.job_heartbeat_s)
            if ended.is_set():
                return
            try:
                requested = await self.lifecycle.jobs.heartbeat(
                    job.owner_id, job.id, self.runner_id
                )
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

    async def _put_back(self, job: Job) -> None:
        """Shutting down mid-job: the job goes back to the queue for another runner."""
        if await self.lifecycle.jobs.requeue(job, "requeued"):
            await self.lifecycle.emit(job, "status", {"status": "queued"})
            await send_or_mark(self.lifecycle.jobs, self.queue, job)
            log.info("job_requeued", job_id=job.id)
