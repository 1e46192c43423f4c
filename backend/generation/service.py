"""What the generation endpoints call: admission, reading, following, cancel, changes."""

from collections.abc import AsyncIterator
from contextlib import aclosing

from backend.config import Settings
from backend.errors import NotFound
from backend.generation.admission import Admission, plan_limits
from backend.generation.changes import Changes
from backend.generation.costs import nanos, usd
from backend.generation.errors import JobFinished
from backend.generation.events import EventHub
from backend.generation.follow import follow
from backend.generation.lifecycle import Lifecycle
from backend.generation.models import Event, Job
from backend.generation.periods import period_bounds, period_of
from backend.generation.repository import JobRepository
from backend.generation.streams import StreamLease, StreamSlots, until
from backend.generation.views import job_view
from backend.repositories.base import utcnow
from backend.repositories.generation_usage import UsageRepository
from backend.repositories.users import User
from schemas.common import Page
from schemas.generation_schemas import (
    AgenticCreate,
    ChangeList,
    FullstackCreate,
    JobRead,
    ModelCatalogue,
    ModelInfo,
    TokenTotals,
    UsageRead,
)


class GenerationService:
    def __init__(
        self,
        *,
        admission: Admission,
        lifecycle: Lifecycle,
        changes: Changes,
        jobs: JobRepository,
        usage: UsageRepository,
        hub: EventHub,
        streams: StreamSlots,
        settings: Settings,
    ) -> None:
        self.admission = admission
        self.lifecycle = lifecycle
        self._changes = changes
        self.jobs = jobs
        self.usage = usage
        self.hub = hub
        self.streams = streams
        self.settings = settings

    async def submit_fullstack(
        self, user: User, body: FullstackCreate, idempotency_key: str | None
    ) -> Job:
        return await self.admission.submit_fullstack(user, body, idempotency_key)

    async def submit_agentic(
        self, user: User, body: AgenticCreate, idempotency_key: str | None
    ) -> Job:
        return await self.admission.submit_agentic(user, body, idempotency_key)

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
        quota, max_active = plan_limits(self.settings, user.plan)
        this_month = counters if counters is not None and counters.period == period else None
        used = this_month.used if this_month else 0
        start, end = period_bounds(period)
        monthly = int(getattr(self.settings, f"agent_monthly_tokens_{user.plan}"))
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
                prompt=this_month.prompt_tokens if this_month else 0,
                completion=this_month.completion_tokens if this_month else 0,
            ),
            cost=usd(this_month.cost_nanos if this_month else 0),
            token_budget=monthly,
            tokens_remaining=max(monthly - (this_month.budget_tokens if this_month else 0), 0),
            job_cost_cap=usd(nanos(getattr(self.settings, f"agent_job_cost_cap_usd_{user.plan}"))),
        )

    def models(self) -> ModelCatalogue:
        """The models agentic jobs may use; empty until an LLM provider is configured."""
        if not self.settings.llm_configured:
            return ModelCatalogue(default_model=None, models=[])
        return ModelCatalogue(
            default_model=self.settings.llm_default_model,
            models=[
                ModelInfo.model_validate(m.model_dump(mode="json"))
                for m in self.settings.llm_models
            ],
        )

    async def open_stream(self, user: User, job: Job) -> StreamLease:
        """A slot for one more event stream of the caller's `job`, or 429 `too_many_streams`."""
        return await self.streams.acquire(user.id, job.id)

    async def follow(self, job: Job, after: int, lease: StreamLease) -> AsyncIterator[Event]:
        """Stored events after `after`, then live ones, until the terminal event or the end of
        the stream's lifetime (the client resumes); the stream's slot is given back after."""
        live = until(lease.ends_at, follow(self.jobs, self.hub, job, after))
        async with lease, aclosing(live) as events:
            async for event in events:
                yield event

    async def changes(self, user: User, job_id: str) -> ChangeList:
        """What the job changed, or would change while it has not landed, with diffs."""
        return await self._changes.of(await self.get(user, job_id))

    async def revert(self, user: User, job_id: str) -> Job:
        """Put back what a succeeded job changed, unless those files changed since."""
        await self._changes.revert(await self.get(user, job_id))
        return await self.get(user, job_id)

    async def cancel(self, user: User, job_id: str) -> Job:
        """Queued: canceled now. Running: the runner stops at its next step."""
        return await self.cancel_job(await self.get(user, job_id))

    async def cancel_job(self, job: Job) -> Job:
        """Cancel `job` for whoever may (its owner, or an admin)."""
        if job.status == "queued":
            if await self.lifecycle.end(job, "canceled", from_status=("queued",)):
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
