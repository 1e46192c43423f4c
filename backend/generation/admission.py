"""Accepting a job: quota, active-job and project slots, the Idempotency-Key, the queue.

Admission is one transaction: the usage reservation, the project slot of a job that creates
its project, the job, its key and its first event change together or not at all.
"""

import asyncio
import hashlib
import json
from typing import Any

import structlog

from backend.config import Settings
from backend.db import Mongo
from backend.errors import (
    AccountDisabled,
    IdempotencyKeyReused,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from backend.generation.errors import (
    GenerationUnavailable,
    KeyInUse,
    ModelNotAllowed,
    QuotaExceeded,
    TooManyActiveJobs,
)
from backend.generation.lifecycle import Lifecycle
from backend.generation.models import Job
from backend.generation.periods import period_of
from backend.generation.repository import JobRepository
from backend.jobs import JobQueue, QueueUnavailable
from backend.metrics import Metrics
from backend.repositories.base import Session, utcnow
from backend.repositories.generation_usage import UsageRepository
from backend.repositories.projects import ProjectRepository
from backend.repositories.users import User, UserRepository
from backend.services.project_rules import Caps, ProjectLimitReached
from schemas.generation_schemas import AgenticCreate, FullstackCreate

log = structlog.get_logger("devora.generation")

# How long a request whose Idempotency-Key another request is storing waits for that job.
KEY_WAIT_ROUNDS, KEY_WAIT_S = 50, 0.05


class _KeyTaken(Exception):
    """Another request stored this Idempotency-Key first."""


def plan_limits(settings: Settings, plan: str) -> tuple[int, int]:
    """(generations a month, active jobs at once) for `plan`."""
    return (
        int(getattr(settings, f"quota_{plan}")),
        int(getattr(settings, f"max_active_jobs_{plan}")),
    )


def _body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _key_id(user_id: str, kind: str, key: str | None) -> str | None:
    if key is None:
        return None
    return hashlib.sha256(f"{user_id}\x00{kind}\x00{key}".encode()).hexdigest()


class Admission:
    def __init__(
        self,
        *,
        mongo: Mongo,
        jobs: JobRepository,
        usage: UsageRepository,
        users: UserRepository,
        projects: ProjectRepository,
        lifecycle: Lifecycle,
        caps: Caps,
        queue: JobQueue,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.mongo = mongo
        self.jobs = jobs
        self.usage = usage
        self.users = users
        self.projects = projects
        self.lifecycle = lifecycle
        self.caps = caps
        self.queue = queue
        self.settings = settings
        self.metrics = metrics

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
        key_id = _key_id(user.id, kind, idempotency_key)
        if key_id is not None:
            record = await self.usage.find_key(key_id)
            if record is not None:
                return await self._replayed(user, record.job_id, record.body_hash, body_hash)
            await self.usage.forget_expired_key(key_id)
        period = period_of(utcnow())
        await self.usage.start_period(user.id, period)

        async def admit(session: Session) -> Job:
            try:
                await self._reserve(user, period, project_id is None, session)
            except (QuotaExceeded, TooManyActiveJobs):
                # A request with the same key that took the last slot has committed by now
                # (its write is what this one saw): answer with its job, not a refusal.
                if key_id is not None and await self.usage.find_key(key_id, session=session):
                    raise _KeyTaken() from None
                raise
            job = await self.jobs.create(
                owner_id=user.id,
                kind=kind,
                project_id=project_id,
                model=model,
                request=request,
                period=period,
                project_slot=project_id is None,
                session=session,
            )
            if key_id is not None and not await self.usage.remember_key(
                key_id, job.id, body_hash, session
            ):
                raise _KeyTaken()
            await self.lifecycle.event(job, "status", {"status": "queued"}, session=session)
            return job

        try:
            job = await self.mongo.transaction(admit)
        except _KeyTaken:
            assert key_id is not None
            return await self._concurrent_key(user, key_id, body_hash)
        await self._enqueue(job, key_id)
        self.metrics.jobs.labels(kind, "accepted").inc()
        log.info("job_accepted", job_id=job.id, kind=kind)
        return job

    async def submit_fullstack(
        self, user: User, body: FullstackCreate, idempotency_key: str | None
    ) -> Job:
        """Admit a job that generates a new project from a spec."""
        return await self.submit(
            user,
            kind="fullstack",
            request=body.model_dump(mode="json"),
            project_id=None,
            model=None,
            idempotency_key=idempotency_key,
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
        counters = await self.usage.get(user.id)
        monthly = int(getattr(self.settings, f"agent_monthly_tokens_{user.plan}"))
        this_month = counters is not None and counters.period == period_of(utcnow())
        if this_month and counters is not None and counters.budget_tokens >= monthly:
            raise QuotaExceeded(
                f"Your plan's {monthly:,} model tokens this month are used up",
                extensions={"budget": "tokens"},
            )
        request = {
            "prompt": body.prompt,
            "project_id": body.project_id,
            "model": model,
            "plan": user.plan,
        }
        return await self.submit(
            user,
            kind="agentic",
            request=request,
            project_id=body.project_id,
            model=model,
            idempotency_key=idempotency_key,
        )

    async def _reserve(
        self, user: User, period: str, creates_project: bool, session: Session
    ) -> None:
        """Take a generation and an active slot, and the project slot of a job that creates
        its project: at the cap it is refused before any generation is spent. An account
        disabled meanwhile is refused here, inside the transaction, whatever a cache said."""
        if not await self.users.hold_if_active(user.id, session):
            raise AccountDisabled()
        quota, max_active = plan_limits(self.settings, user.plan)
        if not await self.usage.reserve(user.id, period, quota, max_active, session):
            counters = await self.usage.get(user.id, session)
            if counters is not None and counters.used >= quota:
                raise QuotaExceeded(
                    f"Your plan allows {quota} generations a month",
                    extensions={"budget": "generations"},
                )
            raise TooManyActiveJobs(f"Your plan allows {max_active} active jobs at once")
        if creates_project:
            cap = self.caps.projects[user.plan]
            if not await self.users.take_project_slot(user.id, cap, session):
                raise ProjectLimitReached(f"The {user.plan} plan allows {cap} projects")

    async def _enqueue(self, job: Job, key_id: str | None) -> None:
        """Hand the admitted job to the queue; if it is unreachable, undo the admission."""
        try:
            await self.queue.enqueue(job)
        except QueueUnavailable:
            await self.mongo.transaction(lambda session: self._withdraw(job, key_id, session))
            raise ServiceUnavailable("The job queue is unavailable; nothing was charged") from None

    async def _concurrent_key(self, user: User, key_id: str, body_hash: str) -> Job:
        """The same key raced us: answer with its job once the other request committed."""
        for _ in range(KEY_WAIT_ROUNDS):
            record = await self.usage.find_key(key_id)
            if record is not None:
                return await self._replayed(user, record.job_id, record.body_hash, body_hash)
            await asyncio.sleep(KEY_WAIT_S)
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
        await self.lifecycle.release(job, refund=True, session=session)
        if key_id is not None:
            await self.usage.forget_key(key_id, session=session)
