"""`/api/v2/billing`: plans, checkout, portal, subscription, invoices, Stripe webhooks."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from api_v2.deps import BillingServiceDep, CurrentUser, WebhookInboxDep
from api_v2.rate_limits import DEFAULT_LIMIT, RateLimits, rate_limit
from api_v2.routing import DocumentedRoute, problems
from backend.errors import IdempotencyKeyReused, Unauthorized
from backend.integrations.stripe_gateway import (
    InvalidCursor,
    InvalidPayload,
    InvalidSignature,
    PaymentProviderError,
    PaymentProviderUnavailable,
)
from backend.middleware import request_id_of
from backend.services.billing import (
    AlreadySubscribed,
    InvalidRedirectUri,
    NoBillingAccount,
    NoSubscription,
    subscription_view,
)
from backend.services.billing_webhooks import WebhookFailed
from schemas.billing_schemas import (
    CheckoutCreate,
    CheckoutSession,
    InvoicePage,
    PlanRead,
    PortalCreate,
    PortalSession,
    SubscriptionRead,
    WebhookReceipt,
)

router = APIRouter(prefix="/billing", tags=["billing"], route_class=DocumentedRoute)
UNAVAILABLE = problems(PaymentProviderUnavailable)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


@router.get("/plans", response_model=list[PlanRead], dependencies=[DEFAULT_LIMIT])
async def list_plans(billing: BillingServiceDep) -> list[PlanRead]:
    """The plans and what they include (public)."""
    return await billing.plans()


@router.get(
    "/subscription",
    response_model=SubscriptionRead,
    responses=problems(Unauthorized),
    dependencies=[DEFAULT_LIMIT],
)
async def get_subscription(user: CurrentUser) -> SubscriptionRead:
    """Your plan and subscription as we last heard from Stripe."""
    return subscription_view(user)


@router.post(
    "/checkout",
    status_code=201,
    response_model=CheckoutSession,
    responses=problems(
        Unauthorized,
        InvalidRedirectUri,
        AlreadySubscribed,
        IdempotencyKeyReused,
        PaymentProviderError,
        PaymentProviderUnavailable,
    ),
    dependencies=[DEFAULT_LIMIT],
)
async def create_checkout(
    body: CheckoutCreate,
    user: CurrentUser,
    billing: BillingServiceDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CheckoutSession:
    """Start a Stripe Checkout for a plan.

    Retrying with the same `Idempotency-Key` and body answers the same session.
    """
    return await billing.checkout(user, body, idempotency_key or request_id_of(request.scope) or "")


@router.post(
    "/portal",
    status_code=201,
    response_model=PortalSession,
    responses=problems(
        Unauthorized,
        InvalidRedirectUri,
        NoBillingAccount,
        PaymentProviderError,
        PaymentProviderUnavailable,
    ),
    dependencies=[DEFAULT_LIMIT],
)
async def create_portal(
    body: PortalCreate, user: CurrentUser, billing: BillingServiceDep
) -> PortalSession:
    """A Stripe billing portal session for managing payment methods and invoices."""
    return await billing.portal(user, body.return_url)


@router.post(
    "/subscription/cancel",
    response_model=SubscriptionRead,
    responses=problems(
        Unauthorized, NoSubscription, PaymentProviderError, PaymentProviderUnavailable
    ),
    dependencies=[DEFAULT_LIMIT],
)
async def cancel_subscription(user: CurrentUser, billing: BillingServiceDep) -> SubscriptionRead:
    """Cancel at the end of the current period."""
    return await billing.set_cancel_at_period_end(user, True)


@router.post(
    "/subscription/resume",
    response_model=SubscriptionRead,
    responses=problems(
        Unauthorized, NoSubscription, PaymentProviderError, PaymentProviderUnavailable
    ),
    dependencies=[DEFAULT_LIMIT],
)
async def resume_subscription(user: CurrentUser, billing: BillingServiceDep) -> SubscriptionRead:
    """Keep the subscription after all."""
    return await billing.set_cancel_at_period_end(user, False)


@router.get(
    "/invoices",
    response_model=InvoicePage,
    responses=problems(
        Unauthorized, InvalidCursor, PaymentProviderError, PaymentProviderUnavailable
    ),
    dependencies=[DEFAULT_LIMIT],
)
async def list_invoices(
    user: CurrentUser,
    billing: BillingServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=255, pattern=r"^in_[A-Za-z0-9]+$")
    ] = None,
) -> InvoicePage:
    """Your invoices, newest first.

    Page with `starting_after`: the id of the last invoice of the page before.
    """
    return await billing.invoices(user, limit, starting_after)


@router.post(
    "/webhooks/stripe",
    response_model=WebhookReceipt,
    responses=problems(InvalidSignature, InvalidPayload, WebhookFailed, PaymentProviderUnavailable),
    dependencies=[rate_limit(RateLimits.STRIPE_WEBHOOK, per_ip=True)],
)
async def receive_stripe_webhook(
    request: Request,
    inbox: WebhookInboxDep,
    stripe_signature: Annotated[
        str | None, Header(alias="Stripe-Signature", max_length=4096)
    ] = None,
) -> WebhookReceipt:
    """Stripe events, verified on the raw body; each event id takes effect once."""
    return await inbox.receive(await request.body(), stripe_signature)
