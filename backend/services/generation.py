"""Generation jobs: admission and quotas, the job's life and events, apply, changes and revert.

Two documents change together in a few places, and only there a transaction is used:
admission (the usage reservation, the project slot of a job that creates its project, and
the job), a job's end (its terminal state, its terminal event and the usage release, plus the
project write on success) and a revert (the project and the job). Everything else is a
single-document conditional update.
"""

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from backend.cache import Cache
from backend.config import Settings
from backend.db import Mongo, despite_cancel
from backend.errors import (
    AppError,
    Conflict,
    IdempotencyKeyReused,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from backend.generation.events import EventHub
from backend.generation.files import apply_changes, change_views
from backend.generation.outcome import JobFailure, Output
from backend.generation.repository import (
    ACTIVE,
    TERMINAL_EVENTS,
    Event,
    Job,
    JobRepository,
    Session,
)
from backend.jobs import JobQueue, QueueUnavailable
from backend.metrics import Metrics
from backend.repositories.base import utcnow
from backend.repositories.generation_usage import UsageRepository
from backend.repositories.messages import MessageRepository
from backend.repositories.projects import ProjectRepository
from backend.repositories.users import User, UserRepository
from backend.services.projects import (
    LIMITS,
    Caps,
    MessageLimitReached,
    ProjectLimitReached,
    append_counted,
    insert_counted,
    owner_scope,
    project_scope,
)
from schemas.common import Page
from schemas.generation_schemas import (
    AgenticCreate,
    ChangeList,
    JobRead,
    ModelCatalogue,
    ModelInfo,
    TokenTotals,
    UsageRead,
)

if TYPE_CHECKING:
    from backend.resources import Resources

log = structlog.get_logger("devora.generation")


class _NotRunning(Exception):
    """The job left the state it was to end from (canceled, requeued, reaped) meanwhile."""


class QuotaExceeded(AppError):
    status, code, title = 402, "quota_exceeded", "This month's generation quota is used up"


class TooManyActiveJobs(AppError):
    status, code, title = 409, "too_many_active_jobs", "Too many jobs are queued or running"


class KeyInUse(Conflict):
    code, title = "idempotency_key_in_use", "A request with this key is being processed"


class JobFinished(Conflict):
    code, title = "job_finished", "The job has already finished"


class JobNotSucceeded(Conflict):
    code, title = "job_not_succeeded", "Only a succeeded job can be reverted"


class JobReverted(Conflict):
    code, title = "job_reverted", "The job has already been reverted"


class RevertConflict(Conflict):
    code, title = "revert_conflict", "Files the job touched have changed since"


class GenerationUnavailable(ServiceUnavailable):
    code, title = "generation_unavailable", "No language model provider is configured"


class ModelNotAllowed(AppError):
    status, code, title = 403, "model_not_allowed", "Your plan may not use this model"


class _KeyTaken(Exception):
    """Another request stored this Idempotency-Key first."""


def period_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def period_bounds(period: str) -> tuple[datetime, datetime]:
    year, month = (int(part) for part in period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def generation_service(resources: "Resources") -> "GenerationService":
    """The service on this process's clients (the API's dependency and the runner share it)."""
    db = resources.mongo.db
    return GenerationService(
        mongo=resources.mongo,
        jobs=JobRepository(db),
        usage=UsageRepository(db),
        projects=ProjectRepository(db),
        messages=MessageRepository(db),
        users=UserRepository(db),
        caps=resources.caps,
        cache=resources.cache,
        queue=resources.queue,
        hub=resources.hub,
        settings=resources.settings,
        metrics=resources.metrics,
    )


def job_view(job: Job) -> JobRead:
    return JobRead.model_validate(job.model_dump())


def _body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class GenerationService:
    def __init__(
        self,
        *,
        mongo: Mongo,
        jobs: JobRepository,
        usage: UsageRepository,
        projects: ProjectRepository,
        messages: MessageRepository,
        users: UserRepository,
        caps: Caps,
        cache: Cache,
        queue: JobQueue,
        hub: EventHub,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.mongo = mongo
        self.jobs = jobs
        self.usage = usage
        self.projects = projects
        self.messages = messages
        self.users = users
        self.caps = caps
        self.cache = cache
        self.queue = queue
        self.hub = hub
        self.settings = settings
        self.metrics = metrics

    # Admission ------------------------------------------------------------------------

    async def submit(
        self,
        user: User,
        *,
        kind: str,
        request: dict[str, Any],
        project_id: str | None,
        model: str | None,
        idempotency_key: str | None,
    ) -> Job:
        """Accept a job: reserve quota and a slot, store it, queue it (or answer the same job
        again for a repeated Idempotency-Key)."""
        body_hash = _body_hash({"kind": kind, **request})
        key_id = self._key_id(user.id, kind, idempotency_key)
        if key_id is not None:
            record = await self.usage.find_key(key_id)
            if record is not None:
                return await self._replayed(user, record.job_id, record.body_hash, body_hash)
            await self.usage.forget_expired_key(key_id)
        period = period_of(utcnow())
        quota, max_active = self._limits(user.plan)
        await self.usage.start_period(user.id, period)
        creates_project = project_id is None

        async def admit(session: Session) -> Job:
            if not await self.usage.reserve(user.id, period, quota, max_active, session):
                counters = await self.usage.get(user.id, session)
                if counters is not None and counters.used >= quota:
                    raise QuotaExceeded(f"Your plan allows {quota} generations a month")
                raise TooManyActiveJobs(f"Your plan allows {max_active} active jobs at once")
            # A job that creates its project takes the project's slot now: at the cap it is
            # refused before any generation is spent, and its commit leaves the user alone.
            if creates_project:
                cap = self.caps.projects[user.plan]
                if not await self.users.take_project_slot(user.id, cap, session):
                    raise ProjectLimitReached(f"The {user.plan} plan allows {cap} projects")
            job = await self.jobs.create(
                owner_id=user.id, kind=kind, project_id=project_id, model=model,
                request=request, period=period, project_slot=creates_project,
                session=session,
            )  # fmt: skip
            if key_id is not None and not await self.usage.remember_key(
                key_id, job.id, body_hash, session
            ):
                raise _KeyTaken()
            await self._event(job, "status", {"status": "queued"}, session=session)
            return job

        try:
            job = await self.mongo.transaction(admit)
        except _KeyTaken:
            assert key_id is not None
            return await self._concurrent_key(user, key_id, body_hash)
        try:
            await self.queue.enqueue(job)
        except QueueUnavailable:
            await self.mongo.transaction(lambda session: self._withdraw(job, key_id, session))
            raise ServiceUnavailable("The job queue is unavailable; nothing was charged") from None
        self.metrics.jobs.labels(kind, "accepted").inc()
        log.info("job_accepted", job_id=job.id, kind=kind)
        return job

    def _key_id(self, user_id: str, kind: str, key: str | None) -> str | None:
        if key is None:
            return None
        return hashlib.sha256(f"{user_id}\x00{kind}\x00{key}".encode()).hexdigest()

    async def _concurrent_key(self, user: User, key_id: str, body_hash: str) -> Job:
        """The same key raced us: answer with its job once the other request committed."""
        for _ in range(50):
            record = await self.usage.find_key(key_id)
            if record is not None:
                return await self._replayed(user, record.job_id, record.body_hash, body_hash)
            await asyncio.sleep(0.05)
        raise KeyInUse("A request with this Idempotency-Key is still being processed")

    async def _replayed(self, user: User, job_id: str, stored: str, presented: str) -> Job:
        if stored != presented:
            raise IdempotencyKeyReused("This Idempotency-Key was used with a different body")
        job = await self.jobs.get(user.id, job_id)
        if job is None:
            raise NotFound("The job of this Idempotency-Key no longer exists")
        return job

    async def _withdraw(self, job: Job, key_id: str | None, session: Session) -> None:
        """Undo an admission whose job could not be queued."""
        await self.jobs.delete(job.owner_id, job.id, session=session)
        await self._release(job, refund=True, session=session)
        if key_id is not None:
            await self.usage.forget_key(key_id, session=session)

    def _limits(self, plan: str) -> tuple[int, int]:
        return (
            int(getattr(self.settings, f"quota_{plan}")),
            int(getattr(self.settings, f"max_active_jobs_{plan}")),
        )

    # Reading ----------------------------------------------------------------------------

    async def get(self, user: User, job_id: str) -> Job:
        """The caller's job; anyone else's does not exist."""
        job = await self.jobs.get(user.id, job_id)
        if job is None:
            raise NotFound("No such job")
        return job

    async def list(
        self, user: User, page: int, limit: int, status: str | None, project_id: str | None
    ) -> Page[JobRead]:
        items, total = await self.jobs.page(
            user.id, page=page, limit=limit, status=status, project_id=project_id
        )
        return Page[JobRead].of([job_view(j) for j in items], page=page, limit=limit, total=total)

    async def usage_of(self, user: User) -> UsageRead:
        period = period_of(utcnow())
        counters = await self.usage.get(user.id)
        quota, max_active = self._limits(user.plan)
        same_month = counters is not None and counters.period == period
        used = counters.used if counters and same_month else 0
        start, end = period_bounds(period)
        return UsageRead(
            plan=user.plan,
            period_start=start,
            period_end=end,
            quota=quota,
            used=used,
            remaining=max(quota - used, 0),
            active_jobs=counters.active if counters else 0,
            max_active_jobs=max_active,
            tokens=TokenTotals(
                prompt=counters.prompt_tokens if counters and same_month else 0,
                completion=counters.completion_tokens if counters and same_month else 0,
            ),
        )

    def models(self) -> ModelCatalogue:
        """The models agentic jobs may use; empty until an LLM provider is configured."""
        if not self.settings.llm_configured:
            return ModelCatalogue(default_model=None, models=[])
        return ModelCatalogue(
            default_model=self.settings.llm_default_model,
            models=[ModelInfo.model_validate(m.model_dump()) for m in self.settings.llm_models],
        )

    async def submit_agentic(
        self, user: User, body: AgenticCreate, idempotency_key: str | None
    ) -> Job:
        """Check the provider, the model and the project, then admit like any job."""
        if not self.settings.llm_configured:
            raise GenerationUnavailable("No language model provider is configured here")
        model = body.model or self.settings.llm_default_model
        entry = next((m for m in self.settings.llm_models if m.id == model), None)
        if entry is None or "agentic" not in entry.kinds:
            issue = {"loc": ["body", "model"], "msg": "unknown model", "type": "unknown_model"}
            raise ValidationFailed(extensions={"errors": [issue]})
        if user.plan not in entry.plans:
            raise ModelNotAllowed(f"{model} is not part of the {user.plan} plan")
        if body.project_id is not None and not await self.projects.exists(user.id, body.project_id):
            raise NotFound("No such project")
        request = {"prompt": body.prompt, "project_id": body.project_id, "model": model,
                   "plan": user.plan}  # fmt: skip
        return await self.submit(
            user, kind="agentic", request=request, project_id=body.project_id, model=model,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    async def follow(self, job: Job, after: int) -> AsyncIterator[Event]:
        """Stored events after `after`, then live ones, until the terminal event."""
        async with self.hub.subscribe(job.id) as live:
            seen: set[int] = set()
            while True:
                # Status before events: a job that is over has every event stored already.
                ended = await self._is_over(job)
                for event in await self.jobs.events_after(job.id, after):
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

    async def _is_over(self, job: Job) -> bool:
        current = await self.jobs.get(job.owner_id, job.id)
        return current is None or current.status not in ACTIVE

    async def changes(self, user: User, job_id: str) -> ChangeList:
        """What the job changed, or would change while it has not landed, with diffs."""
        job = await self.get(user, job_id)
        changes = await self.jobs.staged_changes(job.id)
        if job.status != "succeeded" and job.project_id is not None:
            project = await self.projects.get(user.id, job.project_id)
            current = {f.path: f.content for f in project.files} if project else {}
            changes = [
                change.model_copy(update={"before": current.get(change.path)}) for change in changes
            ]
        return ChangeList(data=await change_views(changes, applied=job.status == "succeeded"))

    # Cancel -----------------------------------------------------------------------------

    async def cancel(self, user: User, job_id: str) -> Job:
        """Queued: canceled now. Running: the runner stops at its next step."""
        return await self.cancel_job(await self.get(user, job_id))

    async def cancel_job(self, job: Job) -> Job:
        """Cancel `job` for whoever may (its owner, or an admin)."""
        if job.status == "queued":
            if await self.end(job, "canceled", from_status=("queued",)):
                return await self._reread(job)
            job = await self._reread(job)
        if job.status == "running":
            await self.jobs.request_cancel(job.owner_id, job.id)
            await self.hub.wait_for_end(job.id, self.settings.job_cancel_wait_s)
            return await self._reread(job)
        raise JobFinished(f"The job is {job.status}")

    async def _reread(self, job: Job) -> Job:
        current = await self.jobs.get(job.owner_id, job.id)
        if current is None:
            raise NotFound("No such job")
        return current

    # The end of a job -------------------------------------------------------------------

    async def _event(
        self,
        job: Job,
        kind: str,
        data: dict[str, Any],
        *,
        fields: dict[str, Any] | None = None,
        session: Session = None,
    ) -> Event:
        seq, _ = await self.jobs.next_seq(job.owner_id, job.id, fields, session=session)
        return await self.jobs.append_event(job.id, seq, kind, data, session=session)

    async def emit(self, job: Job, kind: str, data: dict[str, Any], **fields: Any) -> bool:
        """A non-terminal event (status, progress, message, file), with job fields to set;
        True if the owner has asked to cancel."""
        seq, cancel = await self.jobs.next_seq(job.owner_id, job.id, fields or None)
        await self.jobs.append_event(job.id, seq, kind, data)
        return cancel

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
        (and on success, write its files to the project in the same transaction)."""
        fields: dict[str, Any] = {"status": status, "stage": status}
        if error is not None:
            fields["error"] = {"code": error[0], "message": error[1]}

        applied: dict[str, Any] = {}
        attempts = 0

        async def finish(session: Session) -> None:
            nonlocal attempts
            attempts += 1
            # The job first: from here on it is this transaction's, so a heartbeat or the
            # reaper waits for the commit instead of turning it into a write conflict (which
            # retried a seconds-long commit of many files until it gave up).
            seq = await self.jobs.finish(job, fields, from_status=from_status, session=session)
            if seq is None:
                raise _NotRunning()  # aborts: no project written for a job that did not end
            applied.clear()
            if output is not None:
                applied.update(await self._apply(job, output, session), progress=100)
                await self.jobs.set_fields(job, applied, {}, session=session)
            final = await self.jobs.get(job.owner_id, job.id, session=session)
            assert final is not None
            kind, data = _terminal_event(final)
            await self.jobs.append_event(job.id, seq, kind, data, session=session)
            # The owner's shared counters last, held only until the commit: a commit of many
            # files on a busy database took seconds, and the owner's own submissions waited.
            await self._release(job, refund=status != "succeeded", session=session)

        async def finish_and_invalidate() -> None:
            # Unbounded: a worker's commit of many files may take seconds, and with the database
            # down it waits for it to return rather than losing the job's outcome.
            started = time.monotonic()
            await self.mongo.transaction(finish, bounded=False)
            # Counted before anything else: the status shows from now on.
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
            return await self.end(job, "failed", from_status=from_status,
                                  error=(failure.code, failure.message))  # fmt: skip
        return True

    async def _release(self, job: Job, *, refund: bool, session: Session) -> None:
        """Free the job's active slot (and with `refund` its generation, and the project slot
        it took for a project it did not create)."""
        await self.usage.release(
            job.owner_id, job.period, refund=refund,
            tokens=(job.usage.prompt_tokens, job.usage.completion_tokens), session=session,
        )  # fmt: skip
        if refund and job.project_slot:
            await self.users.free_project_slot(job.owner_id, session)

    def _count_end(self, job: Job, status: str, commit_s: float, attempts: int) -> None:
        self.metrics.jobs.labels(job.kind, status).inc()
        if job.started_at is not None:
            elapsed = (utcnow() - job.started_at).total_seconds()
            self.metrics.job_duration.labels(job.kind, status).observe(elapsed)
        log.info("job_ended", job_id=job.id, kind=job.kind, status=status,
                 commit_s=round(commit_s, 3), commit_attempts=attempts)  # fmt: skip

    async def _apply(self, job: Job, output: Output, session: Session) -> dict[str, Any]:
        """Write the output to the project (created with it for fullstack) in the transaction."""
        project_id = job.project_id
        if project_id is None:
            owner = await self.users.get(job.owner_id)
            if owner is None:
                raise JobFailure("project_missing", "The job's owner no longer exists")
            name = output.project_name or "Generated project"
            files, changes = apply_changes([], output.files, LIMITS)
            if job.project_slot:  # counted when the job was accepted
                project = await self.projects.create(owner.id, name, "", files, session=session)
            else:  # accepted before jobs took their slot at admission
                try:
                    project = await insert_counted(
                        self.users, self.projects, owner, self.caps.projects[owner.plan],
                        name, "", files, session,
                    )  # fmt: skip
                except ProjectLimitReached as refused:
                    raise JobFailure(refused.code, refused.detail) from None
            project_id = project.id
        else:
            found = await self.projects.get(job.owner_id, project_id, session=session)
            if found is None:
                raise JobFailure("project_missing", "The project was deleted while the job ran")
            files, changes = apply_changes(found.files, output.files, LIMITS)
            if not await self.projects.replace_files(
                job.owner_id, project_id, found.version, files, session=session
            ):
                raise JobFailure("project_changed", "The project changed while the job was applied")
        await self.jobs.record_applied(job.id, changes, session)
        entries = [
            (role, text)
            for role, text in (("user", output.prompt), ("assistant", output.summary))
            if text
        ]
        if entries:
            try:
                await append_counted(
                    self.projects,
                    self.messages,
                    job.owner_id,
                    project_id,
                    self.caps.messages,
                    entries,
                    session,
                )
            except MessageLimitReached as refused:
                raise JobFailure(refused.code, refused.detail) from None  # fmt: skip
        result_files = [
            {"path": c.path, "language": c.language, "action": c.action,
             "size": len((c.after or "").encode())}
            for c in changes
        ]  # fmt: skip
        return {"project_id": project_id,
                "result": {"summary": output.summary, "files": result_files}}  # fmt: skip

    # Revert -----------------------------------------------------------------------------

    async def revert(self, user: User, job_id: str) -> Job:
        """Put back what a succeeded job changed, unless those files changed since."""
        job = await self.get(user, job_id)
        if job.status != "succeeded" or job.project_id is None:
            raise JobNotSucceeded(f"The job is {job.status}")
        if job.reverted_at is not None:
            raise JobReverted("The job was reverted already")
        project_id = job.project_id

        async def undo(session: Session) -> None:
            project = await self.projects.get(user.id, project_id, session=session)
            if project is None:
                raise NotFound("The job's project no longer exists")
            changes = await self.jobs.staged_changes(job.id, session=session)
            current = {f.path: f.content for f in project.files}
            changed = [c.path for c in changes if current.get(c.path) != c.after]
            if changed:
                raise RevertConflict(
                    "Changed since the job: " + ", ".join(changed[:20]),
                    extensions={"paths": changed},
                )
            restore = {c.path: c.before for c in changes}
            files, _ = apply_changes(project.files, restore, LIMITS)
            if not await self.projects.replace_files(
                user.id, project_id, project.version, files, session=session
            ):
                raise RevertConflict("The project changed during the revert; try again")
            if not await self.jobs.set_fields(
                job, {"reverted_at": utcnow()}, {"reverted_at": None}, session=session
            ):
                raise JobReverted("The job was reverted already")

        await self.mongo.transaction(undo)
        await self.cache.invalidate(owner_scope(user.id), project_scope(project_id))
        return await self.get(user, job_id)


def _terminal_event(job: Job) -> tuple[str, dict[str, Any]]:
    if job.status == "succeeded":
        return "done", job_view(job).model_dump(mode="json")
    if job.status == "canceled":
        return "canceled", {"status": "canceled"}
    error = job.error
    return "error", (error.model_dump() if error else {"code": "failed", "message": "failed"})
