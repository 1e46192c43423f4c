"""A job's events and its end: the terminal state, its event, the usage release and, on
success, the project write, all in one transaction."""

import time
from datetime import timedelta
from typing import Any

import structlog

from backend.cache import Cache
from backend.db import Mongo, despite_cancel
from backend.generation.files import apply_changes
from backend.generation.models import Event, Job
from backend.generation.outcome import JobFailure, Output, given_back
from backend.generation.periods import period_of
from backend.generation.repository import JobRepository
from backend.generation.views import terminal_event
from backend.metrics import Metrics
from backend.repositories.base import Session, utcnow
from backend.repositories.generation_usage import UsageRepository
from backend.repositories.messages import MessageRepository
from backend.repositories.projects import ProjectFile, ProjectRepository
from backend.repositories.users import UserRepository
from backend.services.project_rules import (
    LIMITS,
    Caps,
    MessageLimitReached,
    ProjectLimitReached,
    append_counted,
    insert_counted,
    owner_scope,
    project_scope,
)

log = structlog.get_logger("devora.generation")


class _NoRoom(Exception):
    """The month's budget has no room for a call's hold."""


class _NotRunning(Exception):
    """The job left the state it was to end from (canceled, requeued, reaped) meanwhile."""


class Lifecycle:
    def __init__(
        self,
        *,
        mongo: Mongo,
        jobs: JobRepository,
        usage: UsageRepository,
        users: UserRepository,
        projects: ProjectRepository,
        messages: MessageRepository,
        caps: Caps,
        cache: Cache,
        metrics: Metrics,
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self.mongo = mongo
        self.jobs = jobs
        self.usage = usage
        self.users = users
        self.projects = projects
        self.messages = messages
        self.caps = caps
        self.cache = cache
        self.metrics = metrics
        self.retention = retention

    async def event(
        self, job: Job, kind: str, data: dict[str, Any], *, session: Session = None
    ) -> Event:
        """Append an event under the job's next number (in `session` when given)."""
        seq, _ = await self.jobs.next_seq(job.owner_id, job.id, None, session=session)
        return await self.jobs.append_event(job.id, seq, kind, data, session=session)

    async def emit(
        self, job: Job, kind: str, data: dict[str, Any], **fields: Any
    ) -> tuple[int, bool]:
        """A non-terminal event (status, progress, message, file), with job fields to set;
        its number, and True if the owner has asked to cancel."""
        seq, cancel = await self.jobs.next_seq(job.owner_id, job.id, fields or None)
        await self.jobs.append_event(job.id, seq, kind, data)
        return seq, cancel

    async def merge_messages(self, job: Job, seqs: list[int]) -> None:
        """One model call's streamed `message` events become one stored event, under the
        last one's number: live followers saw each piece as it came (and skip that number,
        seen already); a later reader gets the call's text at once. Stored events therefore
        grow with a job's model and tool calls, not with the tokens it streams."""
        if len(seqs) < 2:
            return

        async def merge(session: Session) -> None:
            pieces = await self.jobs.events_in(job.id, seqs, session=session)
            text = "".join(str(e.data.get("text", "")) for e in pieces if e.type == "message")
            await self.jobs.delete_events(job.id, seqs, session=session)
            await self.jobs.append_event(job.id, seqs[-1], "message", {"text": text}, session)

        await self.mongo.transaction(merge)

    async def end(
        self,
        job: Job,
        status: str,
        *,
        from_status: tuple[str, ...] = ("running",),
        error: tuple[str, str] | None = None,
        output: Output | None = None,
    ) -> bool:
        """Move the job to `status` with its terminal event and usage release, atomically
        (and on success, write its files to the project in the same transaction). False when
        the job was no longer in `from_status`."""
        expires = utcnow() + self.retention
        fields: dict[str, Any] = {"status": status, "stage": status, "data_expires_at": expires}
        if error is not None:
            fields["error"] = {"code": error[0], "message": error[1]}
        applied: dict[str, Any] = {}
        attempts = 0

        async def finish(session: Session) -> None:
            nonlocal attempts
            attempts += 1
            # The job is written first, so a heartbeat or the reaper waits for this commit
            # rather than turning it into a write conflict that retries the whole commit.
            seq = await self.jobs.finish(job, fields, from_status=from_status, session=session)
            if seq is None:
                raise _NotRunning()
            applied.clear()
            if output is not None:
                applied.update(await self._apply(job, output, session), progress=100)
                await self.jobs.set_fields(job, applied, {}, session=session)
            final = await self.jobs.get(job.owner_id, job.id, session=session)
            assert final is not None
            kind, data = terminal_event(final)
            await self.jobs.append_event(job.id, seq, kind, data, session=session)
            await self.jobs.expire_data(job.id, expires, session)
            # The owner's shared counters last: they are held only until the commit, and the
            # owner's own submissions wait on them.
            refund = given_back(status, error[0] if error else None, job.usage.spent)
            await self.release(job, refund=refund, created=status == "succeeded", session=session)

        async def finish_and_invalidate() -> None:
            # Unbounded: with the database down, the outcome waits for it rather than being lost.
            started = time.monotonic()
            await self.mongo.transaction(finish, bounded=False)
            self._count_end(job, status, time.monotonic() - started, attempts)
            if "project_id" in applied:
                await self.cache.invalidate(
                    owner_scope(job.owner_id), project_scope(applied["project_id"])
                )

        try:
            # A worker shutting down mid-commit still commits and invalidates.
            await despite_cancel(finish_and_invalidate())
        except _NotRunning:
            return False
        except JobFailure as failure:
            # The output broke a project rule: the job fails instead, the project untouched.
            failed = (failure.code, failure.message)
            return await self.end(job, "failed", from_status=from_status, error=failed)
        return True

    async def release(
        self, job: Job, *, refund: bool, session: Session, created: bool = False
    ) -> None:
        """Free the job's active slot, what it still holds for a call, and with `refund` its
        generation; a job that took a project slot and did not create its project frees
        that slot too."""
        await self.usage.release(job.owner_id, job.period, refund=refund, session=session)
        if job.usage.held_tokens and job.usage.held_period:
            await self.usage.settle(
                job.owner_id, job.usage.held_period, held=job.usage.held_tokens, spent=(0, 0),
                cost_nanos=0, session=session,
            )  # fmt: skip
        if job.project_slot and not created:
            await self.users.free_project_slot(job.owner_id, session)

    async def month_left(self, job: Job, budget: int) -> int:
        """Tokens of the owner's month not yet spent or held, of `budget`."""
        counters = await self.usage.get(job.owner_id)
        if counters is None or counters.period != period_of(utcnow()):
            return budget
        return budget - counters.budget_tokens

    async def hold(self, job: Job, tokens: int, budget: int) -> bool:
        """Hold `tokens` of the owner's month for the job's next model call, if the month's
        `budget` allows them; the job records the hold, so its end gives it back."""
        period = period_of(utcnow())
        await self.usage.start_period(job.owner_id, period)

        stale, stale_period = job.usage.held_tokens, job.usage.held_period

        async def take(session: Session) -> bool:
            if stale and stale_period:
                # Left by an attempt that died mid-call (this job was retried): given back.
                await self.usage.settle(
                    job.owner_id, stale_period, held=stale, spent=(0, 0), cost_nanos=0,
                    session=session,
                )  # fmt: skip
            if not await self.usage.hold(job.owner_id, period, tokens, budget, session):
                raise _NoRoom()  # aborts: a stale hold stays the job's, to give back at its end
            await self.jobs.hold(job, tokens, period, session)
            return True

        try:
            await self.mongo.transaction(take)
        except _NoRoom:
            return False
        job.usage.held_tokens, job.usage.held_period = tokens, period
        return True

    async def settle(self, job: Job, prompt_tokens: int, completion_tokens: int, cost: int) -> None:
        """A call's spend, on the job and the owner's month, in place of its hold."""
        held, period = job.usage.held_tokens, job.usage.held_period or job.period

        async def count(session: Session) -> None:
            await self.usage.settle(
                job.owner_id, period, held=held, spent=(prompt_tokens, completion_tokens),
                cost_nanos=cost, session=session,
            )  # fmt: skip
            await self.jobs.settle(job, prompt_tokens, completion_tokens, cost, session)

        await self.mongo.transaction(count)
        job.usage.prompt_tokens += prompt_tokens
        job.usage.completion_tokens += completion_tokens
        job.usage.cost_nanos += cost
        job.usage.held_tokens = 0

    def _count_end(self, job: Job, status: str, commit_s: float, attempts: int) -> None:
        self.metrics.jobs.labels(job.kind, status).inc()
        if job.started_at is not None:
            elapsed = (utcnow() - job.started_at).total_seconds()
            self.metrics.job_duration.labels(job.kind, status).observe(elapsed)
        log.info(
            "job_ended",
            job_id=job.id,
            kind=job.kind,
            status=status,
            commit_s=round(commit_s, 3),
            commit_attempts=attempts,
        )

    async def _apply(self, job: Job, output: Output, session: Session) -> dict[str, Any]:
        """Write the output to the project (created with it when the job has none) in the
        transaction; returns the job fields to set."""
        if job.project_id is None:
            files, changes = apply_changes([], output.files, LIMITS)
            project_id = await self._create_project(job, output.project_name, files, session)
        else:
            project_id = job.project_id
            found = await self.projects.get(job.owner_id, project_id, session=session)
            if found is None:
                raise JobFailure("project_missing", "The project was deleted while the job ran")
            files, changes = apply_changes(found.files, output.files, LIMITS)
            if not await self.projects.replace_files(
                job.owner_id, project_id, found.version, files, session=session
            ):
                raise JobFailure("project_changed", "The project changed while the job was applied")
        await self.jobs.record_applied(job.id, changes, session)
        await self._converse(job.owner_id, project_id, output, session)
        result_files = [
            {
                "path": c.path,
                "language": c.language,
                "action": c.action,
                "size": len((c.after or "").encode()),
            }
            for c in changes
        ]
        checks = output.checks.model_dump() if output.checks else None
        result = {"summary": output.summary, "files": result_files, "checks": checks}
        return {"project_id": project_id, "result": result}

    async def _create_project(
        self, job: Job, name: str | None, files: list[ProjectFile], session: Session
    ) -> str:
        owner = await self.users.get(job.owner_id)
        if owner is None:
            raise JobFailure("project_missing", "The job's owner no longer exists")
        name = name or "Generated project"
        if job.project_slot:  # taken when the job was accepted
            project = await self.projects.create(owner.id, name, "", files, session=session)
            return project.id
        # No slot was reserved at admission (`project_slot` false): take one now, within the cap.
        cap = self.caps.projects[owner.plan]
        try:
            project = await insert_counted(
                self.users, self.projects, owner, cap, name, "", files, session
            )
        except ProjectLimitReached as refused:
            raise JobFailure(refused.code, refused.detail) from None
        return project.id

    async def _converse(
        self, owner_id: str, project_id: str, output: Output, session: Session
    ) -> None:
        """The job's request and summary join the project's conversation, within its cap."""
        said = (("user", output.prompt), ("assistant", output.summary))
        entries = [(role, text) for role, text in said if text]
        if not entries:
            return
        try:
            await append_counted(
                self.projects,
                self.messages,
                owner_id,
                project_id,
                self.caps.messages,
                entries,
                session,
            )
        except MessageLimitReached as refused:
            raise JobFailure(refused.code, refused.detail) from None
