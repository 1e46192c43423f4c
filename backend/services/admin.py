"""What administrators may see and do; every write is recorded in the audit log.

A user change and its audit entry are one transaction. A write outside MongoDB (a cache
invalidation) is audited first: the entry exists whenever the change does (it may also
exist for one that then failed, and says so in `details`).
"""

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from backend.cache import Cache, CacheConfig, cached
from backend.db import Mongo
from backend.errors import AppError, Conflict, NotFound, ValidationFailed
from backend.generation.costs import usd
from backend.generation.errors import JobFinished
from backend.generation.models import Job
from backend.generation.periods import period_of
from backend.generation.repository import JobRepository
from backend.generation.service import GenerationService
from backend.generation.views import job_view
from backend.integrations.stripe_gateway import PaymentProviderUnavailable, StripeGateway
from backend.repositories.audit import AuditRepository
from backend.repositories.auth_tokens import RefreshTokenRepository
from backend.repositories.base import Session
from backend.repositories.generation_usage import UsageRepository
from backend.repositories.projects import ProjectRepository
from backend.repositories.stripe_events import Claim, StripeEventLog
from backend.repositories.users import User, UserRepository
from backend.services.billing_webhooks import WebhookFailed, WebhookInbox
from backend.services.project_rules import owner_scope
from backend.services.users import user_scope
from schemas.admin_schemas import (
    AdminJobRead,
    AdminUserRead,
    AdminUserUpdate,
    AuditEntry,
    CacheInvalidate,
    CacheTotals,
    CustomerBatch,
    DayAmount,
    DayCount,
    GenerationTotals,
    Invalidated,
    ProjectTotals,
    Series,
    StatsRead,
    SubscriptionTotals,
    UserTotals,
    WebhookEventRead,
)
from schemas.common import Page

CUSTOMER_CONCURRENCY = 10


class CannotModifySelf(Conflict):
    code, title = "cannot_modify_self", "Administrators cannot demote or disable themselves"


class AdminService:
    def __init__(
        self,
        *,
        mongo: Mongo,
        users: UserRepository,
        projects: ProjectRepository,
        jobs: JobRepository,
        usage: UsageRepository,
        refresh_tokens: RefreshTokenRepository,
        events: StripeEventLog,
        audit: AuditRepository,
        cache: Cache,
        generation: GenerationService,
        inbox: WebhookInbox | None,
        stripe_gateway: StripeGateway | None,
    ) -> None:
        self.mongo = mongo
        self.users = users
        self.projects = projects
        self.jobs = jobs
        self.usage = usage
        self.refresh_tokens = refresh_tokens
        self.events = events
        self.audit = audit
        self.cache = cache
        self.generation = generation
        self.inbox = inbox
        self.stripe = stripe_gateway

    # Users --------------------------------------------------------------------------------

    async def list_users(
        self, filters: dict[str, Any], page: int, limit: int
    ) -> Page[AdminUserRead]:
        """A page of users with their counts: three queries per page, never one per user."""
        users, total = await self.users.admin_page(**filters, page=page, limit=limit)
        views = await self._views(users)
        return Page[AdminUserRead].of(views, page=page, limit=limit, total=total)

    async def _views(self, users: list[User]) -> list[AdminUserRead]:
        ids = [user.id for user in users]
        projects, jobs, months = await asyncio.gather(
            self.projects.count_by_owner(ids),
            self.jobs.count_by_owner(ids),
            self.usage.of_users(ids, period_of(datetime.now(UTC))),
        )
        views = []
        for user in users:
            month = months.get(user.id)
            views.append(
                AdminUserRead.model_validate(
                    {
                        **user.model_dump(),
                        "project_count": projects.get(user.id, 0),
                        "generation_count": jobs.get(user.id, 0),
                        "month_tokens": month.prompt_tokens + month.completion_tokens
                        if month
                        else 0,
                        "month_cost": usd(month.cost_nanos if month else 0),
                    }
                )
            )
        return views

    async def get_user(self, user_id: str) -> AdminUserRead:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No such user")
        return (await self._views([user]))[0]

    async def update_user(
        self, actor: User, user_id: str, change: AdminUserUpdate, request_id: str | None
    ) -> AdminUserRead:
        """Role, activity or plan; disabling ends every session and active job at once."""
        fields = change.model_dump(exclude_unset=True, exclude_none=True)
        if actor.id == user_id and (
            fields.get("role") == "user" or fields.get("is_active") is False
        ):
            raise CannotModifySelf("Ask another administrator")
        before = await self.users.get(user_id)
        if before is None:
            raise NotFound("No such user")
        if "plan" in fields:
            # A plan set by hand holds until the next Stripe subscription event for this user,
            # which is newer state and wins (the webhook inbox applies newest-first).
            fields["plan_source"] = "admin"

        async def write(session: Session) -> User:
            after = await self.users.update(user_id, fields, session=session)
            assert after is not None
            await self.audit.record(
                actor.id,
                "user.update",
                f"user:{user_id}",
                {
                    "before": _user_fields(before),
                    "after": _user_fields(after),
                    "request_id": request_id,
                },
                session=session,
            )
            return after

        after = await self.mongo.transaction(write)
        await self.cache.invalidate(user_scope(user_id))
        if fields.get("is_active") is False:
            await self._lock_out(after)
        return (await self._views([after]))[0]

    async def _lock_out(self, user: User) -> None:
        """Sessions end first, so the next request is refused; then every active job is
        canceled, concurrently, and again for any admitted before the disable committed
        (admission refuses the account from then on)."""
        await self.users.end_sessions(user.id)
        await self.refresh_tokens.revoke_user(user.id)
        await self.cache.invalidate(user_scope(user.id))
        handled: set[str] = set()
        while fresh := [j for j in await self.jobs.active_of(user.id) if j.id not in handled]:
            handled.update(job.id for job in fresh)
            await asyncio.gather(*(self._cancel_quietly(job) for job in fresh))

    async def _cancel_quietly(self, job: Job) -> None:
        with contextlib.suppress(JobFinished, NotFound):
            await self.generation.cancel_job(job)

    # Stats --------------------------------------------------------------------------------

    async def stats(self, days: int) -> StatsRead:
        """Totals and daily series (cached briefly) plus this process's live cache counters."""
        stored = await self._stats(days, _today().isoformat())
        counters = self.cache.stats()
        cache = CacheTotals(
            hits=int(counters["hits"]),
            misses=int(counters["misses"]),
            hit_ratio=counters["hit_ratio"],
        )
        return stored.model_copy(update={"cache": cache})

    @cached(CacheConfig.ADMIN_STATS, scope=lambda **_: "admin:stats")
    async def _stats(self, days: int, today: str) -> StatsRead:
        start = datetime.fromisoformat(today).replace(tzinfo=UTC) - timedelta(days=days - 1)
        groups = (await self.users.totals())["groups"]

        def users_where(**want: Any) -> int:
            return sum(
                g["count"] for g in groups if all(g["_id"].get(k) == v for k, v in want.items())
            )

        by_plan: dict[str, int] = {}
        by_subscription: dict[str, int] = {}
        for group in groups:
            plan = group["_id"].get("plan") or "free"
            by_plan[plan] = by_plan.get(plan, 0) + group["count"]
            status = group["_id"].get("subscription") or "inactive"
            by_subscription[status] = by_subscription.get(status, 0) + group["count"]
        by_status, last_day, signups, made, failed, projects = await asyncio.gather(
            self.jobs.count_by_status(),
            self.jobs.count_since(datetime.now(UTC) - timedelta(hours=24)),
            self.users.created_by_day(start),
            self.jobs.created_by_day(start),
            self.jobs.created_by_day(start, status="failed"),
            self.projects.count_all(),
        )
        spend = await self.jobs.spend_by_day(start)
        return StatsRead(
            users=UserTotals(
                total=sum(g["count"] for g in groups),
                active=sum(g["count"] for g in groups if g["_id"].get("active", True) is not False),
                verified=users_where(verified=True),
                by_plan=by_plan,
            ),
            projects=ProjectTotals(total=projects),
            generations=GenerationTotals(
                total=sum(by_status.values()), by_status=by_status, last_24h=last_day
            ),
            subscriptions=SubscriptionTotals(
                active=by_subscription.get("active", 0) + by_subscription.get("trialing", 0),
                past_due=by_subscription.get("past_due", 0),
                canceled=by_subscription.get("canceled", 0),
            ),
            cache=CacheTotals(hits=0, misses=0, hit_ratio=0),
            series=Series(
                signups=_series(signups, start, days),
                generations=_series(made, start, days),
                failed_generations=_series(failed, start, days),
                tokens=_series({day: tokens for day, (tokens, _) in spend.items()}, start, days),
                cost=[
                    DayAmount(date=day.date, usd=usd(spend.get(day.date.isoformat(), (0, 0))[1]))
                    for day in _series({}, start, days)
                ],
            ),
        )

    # Cache --------------------------------------------------------------------------------

    async def invalidate(
        self, actor: User, body: CacheInvalidate, request_id: str | None
    ) -> Invalidated:
        if (body.prefix is None) == (body.user_id is None):
            issue = {
                "loc": ["body"],
                "msg": "give exactly one of prefix and user_id",
                "type": "value_error",
            }
            raise ValidationFailed(extensions={"errors": [issue]})
        target = f"prefix:{body.prefix}" if body.prefix else f"user:{body.user_id}"
        await self.audit.record(actor.id, "cache.invalidate", target, {"request_id": request_id})
        if body.prefix is not None:
            return Invalidated(invalidated=await self.cache.invalidate_prefix(body.prefix))
        assert body.user_id is not None
        await self.cache.invalidate(user_scope(body.user_id), owner_scope(body.user_id))
        return Invalidated(invalidated=2)

    # Webhooks -----------------------------------------------------------------------------

    async def webhooks(
        self, status: str | None, kind: str | None, page: int, limit: int
    ) -> Page[WebhookEventRead]:
        events, total = await self.events.page(status=status, kind=kind, page=page, limit=limit)
        views = [WebhookEventRead.model_validate(e.model_dump()) for e in events]
        return Page[WebhookEventRead].of(views, page=page, limit=limit, total=total)

    async def replay(self, actor: User, event_id: str, request_id: str | None) -> WebhookEventRead:
        """Run a stored event through the inbox again: a processed one has no second effect,
        a failed (or abandoned) one is handled again."""
        event = await self.events.get(event_id)
        if event is None:
            raise NotFound("No such event")
        if self.inbox is None:
            raise PaymentProviderUnavailable("Billing is not configured")
        details = {
            "before": {"status": event.status, "attempts": event.attempts},
            "request_id": request_id,
        }
        entry = await self.audit.record(
            actor.id, "webhook.replay", f"stripe_event:{event_id}", details
        )
        claim = await self.inbox.events.claim(event.id, event.type, event.payload)
        if claim is Claim.RETRY:
            # A failure is recorded on the event, as a delivery's would be.
            with contextlib.suppress(WebhookFailed):
                await self.inbox.process(json.loads(event.payload))
        replayed = await self.events.get(event_id)
        assert replayed is not None
        await self.audit.completed(
            entry, {"status": replayed.status, "attempts": replayed.attempts}
        )
        return WebhookEventRead.model_validate(replayed.model_dump())

    # Stripe customers -------------------------------------------------------------------

    async def customers(self, ids: list[str]) -> CustomerBatch:
        """Each id fetched from Stripe, ~10 at a time; one failing does not fail the rest."""
        if self.stripe is None:
            raise PaymentProviderUnavailable("Billing is not configured")
        gateway = self.stripe
        gate = asyncio.Semaphore(CUSTOMER_CONCURRENCY)

        async def fetch(customer_id: str) -> tuple[str, dict[str, Any] | None, str | None]:
            async with gate:
                try:
                    found = await gateway.retrieve_customer(customer_id)
                except (stripe.StripeError, PaymentProviderUnavailable):
                    return customer_id, None, "provider_error"
            return customer_id, found, None if found else "not_found"

        results = await asyncio.gather(*(fetch(i) for i in dict.fromkeys(ids)))
        return CustomerBatch(
            data=[found for _, found, _ in results if found is not None],
            errors=[{"id": i, "code": code} for i, _, code in results if code is not None],
        )

    # Jobs ---------------------------------------------------------------------------------

    async def list_jobs(self, filters: dict[str, Any], page: int, limit: int) -> Page[AdminJobRead]:
        jobs, total = await self.jobs.admin_page(**filters, page=page, limit=limit)
        return Page[AdminJobRead].of(
            [_admin_job(j) for j in jobs], page=page, limit=limit, total=total
        )

    async def cancel_job(self, actor: User, job_id: str, request_id: str | None) -> AdminJobRead:
        job = await self.jobs.get_any(job_id)
        if job is None:
            raise NotFound("No such job")
        details = {"before": {"status": job.status}, "request_id": request_id}
        entry = await self.audit.record(actor.id, "job.cancel", f"job:{job_id}", details)
        try:
            canceled = await self.generation.cancel_job(job)
        except AppError as refused:
            await self.audit.refused(entry, refused.code)
            raise
        await self.audit.completed(entry, {"status": canceled.status})
        return _admin_job(canceled)

    # Audit log --------------------------------------------------------------------------

    async def audit_log(self, page: int, limit: int) -> Page[AuditEntry]:
        records, total = await self.audit.page(page=page, limit=limit)
        views = [AuditEntry.model_validate(r.model_dump()) for r in records]
        return Page[AuditEntry].of(views, page=page, limit=limit, total=total)


def _user_fields(user: User) -> dict[str, Any]:
    return {"role": user.role, "is_active": user.is_active, "plan": user.plan}


def _admin_job(job: Job) -> AdminJobRead:
    return AdminJobRead.model_validate({**job_view(job).model_dump(), "user_id": job.owner_id})


def _today() -> Any:
    return datetime.now(UTC).date()


def _series(counts: dict[str, int], start: datetime, days: int) -> list[DayCount]:
    dates = [(start + timedelta(days=n)).date() for n in range(days)]
    return [DayCount(date=day, count=counts.get(day.isoformat(), 0)) for day in dates]
