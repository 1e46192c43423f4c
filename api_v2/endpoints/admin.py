"""`/api/v2/admin`: users, stats, cache, webhook log, Stripe customers, jobs, audit log.

Every route needs role `admin` (401 without a token, 403 `forbidden` otherwise) and counts
against the admin's own rate limit."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from api_v2.deps import AdminServiceDep, AdminUser, Pagination, admin_user
from api_v2.rate_limits import RateLimits, rate_limit
from api_v2.routing import DocumentedRoute, problems
from backend.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from backend.generation.errors import JobFinished
from backend.integrations.stripe_gateway import PaymentProviderUnavailable
from backend.middleware import request_id_of
from backend.services.admin import CannotModifySelf
from schemas.admin_schemas import (
    AdminJobRead,
    AdminUserRead,
    AdminUserUpdate,
    AuditEntry,
    CacheInvalidate,
    CustomerBatch,
    Invalidated,
    StatsRead,
    WebhookEventRead,
)
from schemas.common import Page, ResourceId
from schemas.generation_schemas import JobKind, JobStatus

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    route_class=DocumentedRoute,
    dependencies=[Depends(admin_user), rate_limit(RateLimits.ADMIN)],
    responses=problems(Unauthorized, Forbidden),
)
MAX_CUSTOMER_IDS = 100


@router.get("/users", response_model=Page[AdminUserRead])
async def list_users(
    admin: AdminServiceDep,
    paging: Pagination,
    search: Annotated[str | None, Query(max_length=200)] = None,
    role: Literal["user", "admin"] | None = None,
    plan: Literal["free", "pro", "team"] | None = None,
    is_active: bool | None = None,
) -> Page[AdminUserRead]:
    """Users, newest first, with their project and generation counts."""
    filters = {"search": search or None, "role": role, "plan": plan, "is_active": is_active}
    return await admin.list_users(filters, paging.page, paging.limit)


@router.get("/users/{user_id}", response_model=AdminUserRead, responses=problems(NotFound))
async def get_user(user_id: ResourceId, admin: AdminServiceDep) -> AdminUserRead:
    """One user, as the admin sees them."""
    return await admin.get_user(user_id)


@router.patch(
    "/users/{user_id}", response_model=AdminUserRead, responses=problems(NotFound, CannotModifySelf)
)
async def update_user(
    user_id: ResourceId,
    body: AdminUserUpdate,
    actor: AdminUser,
    admin: AdminServiceDep,
    request: Request,
) -> AdminUserRead:
    """Change a user's role, activity or plan; disabling ends their sessions and jobs."""
    return await admin.update_user(actor, user_id, body, request_id_of(request.scope))


@router.get("/stats", response_model=StatsRead)
async def get_stats(
    admin: AdminServiceDep, days: Annotated[int, Query(ge=1, le=90)] = 30
) -> StatsRead:
    """Totals and zero-filled daily series for the dashboard (cached for a minute)."""
    return await admin.stats(days)


@router.post("/cache/invalidate", response_model=Invalidated, responses=problems(ValidationFailed))
async def invalidate_cache(
    body: CacheInvalidate, actor: AdminUser, admin: AdminServiceDep, request: Request
) -> Invalidated:
    """Make cached entries unreachable: a key prefix, or everything of one user."""
    return await admin.invalidate(actor, body, request_id_of(request.scope))


@router.get("/webhooks", response_model=Page[WebhookEventRead])
async def list_webhook_events(
    admin: AdminServiceDep,
    paging: Pagination,
    status: Literal["processed", "failed", "processing"] | None = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[WebhookEventRead]:
    """Stored Stripe events, newest first."""
    return await admin.webhooks(status, type, paging.page, paging.limit)


@router.post(
    "/webhooks/{event_id}/replay",
    response_model=WebhookEventRead,
    responses=problems(NotFound, PaymentProviderUnavailable),
)
async def replay_webhook_event(
    event_id: str, actor: AdminUser, admin: AdminServiceDep, request: Request
) -> WebhookEventRead:
    """Handle a stored event again (a processed one has no second effect)."""
    return await admin.replay(actor, event_id, request_id_of(request.scope))


@router.get(
    "/billing/customers",
    response_model=CustomerBatch,
    responses=problems(ValidationFailed, PaymentProviderUnavailable),
)
async def list_stripe_customers(
    admin: AdminServiceDep, ids: Annotated[str, Query(min_length=1, max_length=5000)]
) -> CustomerBatch:
    """Stripe customers by id (comma-separated, at most 100), fetched concurrently."""
    wanted = [part.strip() for part in ids.split(",") if part.strip()]
    if not wanted or len(wanted) > MAX_CUSTOMER_IDS:
        issue = {"loc": ["query", "ids"], "msg": "give 1 to 100 ids", "type": "value_error"}
        raise ValidationFailed(extensions={"errors": [issue]})
    return await admin.customers(wanted)


@router.get("/jobs", response_model=Page[AdminJobRead])
async def list_all_jobs(
    admin: AdminServiceDep,
    paging: Pagination,
    status: JobStatus | None = None,
    user_id: Annotated[ResourceId | None, Query(max_length=64)] = None,
    kind: JobKind | None = None,
) -> Page[AdminJobRead]:
    """Every user's jobs, newest first."""
    filters = {"status": status, "owner_id": user_id, "kind": kind}
    return await admin.list_jobs(filters, paging.page, paging.limit)


@router.post(
    "/jobs/{job_id}/cancel", response_model=AdminJobRead, responses=problems(NotFound, JobFinished)
)
async def cancel_any_job(
    job_id: ResourceId, actor: AdminUser, admin: AdminServiceDep, request: Request
) -> AdminJobRead:
    """Cancel any user's job, as its owner would."""
    return await admin.cancel_job(actor, job_id, request_id_of(request.scope))


@router.get("/audit-log", response_model=Page[AuditEntry])
async def list_audit_log(admin: AdminServiceDep, paging: Pagination) -> Page[AuditEntry]:
    """Every admin write, newest first."""
    return await admin.audit_log(paging.page, paging.limit)
