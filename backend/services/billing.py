"""Plans, checkout, portal, subscriptions and invoices; Stripe is reached through the gateway."""

from datetime import UTC, datetime
from typing import Any

from backend.cache import Cache, CacheConfig, cached
from backend.config import Settings
from backend.errors import BadRequest, Conflict
from backend.integrations.stripe_gateway import PaymentProviderUnavailable, StripeGateway
from backend.redirects import is_allowed_redirect
from backend.repositories.users import StoredSubscription, User, UserRepository
from backend.services.users import user_scope
from schemas.billing_schemas import (
    CheckoutCreate,
    CheckoutSession,
    InvoicePage,
    InvoiceRead,
    PlanRead,
    PortalSession,
    SubscriptionRead,
)

PAID_STATUSES = ("active", "trialing", "past_due")


class InvalidRedirectUri(BadRequest):
    code, title = "invalid_redirect_uri", "The URL is not on the frontend allow-list"


class AlreadySubscribed(Conflict):
    code, title = "already_subscribed", "You already have a subscription; use the portal"


class NoBillingAccount(Conflict):
    code, title = "no_billing_account", "No billing account yet: subscribe first"


class NoSubscription(Conflict):
    code, title = "no_subscription", "There is no subscription to change"


def invoices_scope(user_id: str) -> str:
    return f"billing:{user_id}"


def plan_catalogue(settings: Settings) -> list[PlanRead]:
    """Every plan from settings; `free` costs nothing and has no Stripe price."""
    return [
        PlanRead(
            id="free",
            name="Free",
            price_cents=0,
            currency=settings.plan_currency,
            interval="month",
            generation_quota=settings.quota_free,
            features=["Unlimited projects", f"{settings.quota_free} generations a month"],
        ),
        PlanRead(
            id="pro",
            name="Pro",
            price_cents=settings.plan_pro_price_cents,
            currency=settings.plan_currency,
            interval="month",
            generation_quota=settings.quota_pro,
            features=[
                "Everything in Free",
                f"{settings.quota_pro} generations a month",
                "Agentic generation",
                "GitHub and Vercel links",
            ],
        ),
        PlanRead(
            id="team",
            name="Team",
            price_cents=settings.plan_team_price_cents,
            currency=settings.plan_currency,
            interval="month",
            generation_quota=settings.quota_team,
            features=[
                "Everything in Pro",
                f"{settings.quota_team} generations a month",
                "Priority queue",
            ],
        ),
    ]


def subscription_view(user: User) -> SubscriptionRead:
    stored = user.subscription
    return SubscriptionRead(
        plan=user.plan,
        status=user.subscription_status,
        current_period_end=stored.current_period_end if stored else None,
        cancel_at_period_end=stored.cancel_at_period_end if stored else False,
    )


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def read_subscription(
    sub: dict[str, Any], prices: dict[str, str], event_created: int, *, deleted: bool = False
) -> tuple[dict[str, Any], StoredSubscription]:
    """User fields (plan, subscription_status) and our stored copy for a Stripe subscription."""
    items = (sub.get("items") or {}).get("data") or [{}]
    item = items[0]
    price_id = (item.get("price") or {}).get("id") or (item.get("plan") or {}).get("id")
    status = "canceled" if deleted else str(sub.get("status"))
    plan = prices.get(price_id or "", "free")
    if status in ("active", "trialing", "past_due") and plan != "free":
        fields = {"plan": plan, "subscription_status": status}
    elif status == "incomplete":
        fields = {"plan": "free", "subscription_status": "inactive"}
    else:  # canceled, unpaid, incomplete_expired, or deleted
        fields = {"plan": "free", "subscription_status": "canceled"}
    stored = StoredSubscription(
        id=str(sub["id"]),
        stripe_status=status,
        price_id=price_id,
        # Newer API versions keep the period on the item.
        current_period_end=_timestamp(sub.get("current_period_end"))
        or _timestamp(item.get("current_period_end")),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        event_created=event_created,
    )
    return fields, stored


class BillingService:
    def __init__(
        self,
        *,
        users: UserRepository,
        gateway: StripeGateway | None,
        cache: Cache,
        settings: Settings,
    ) -> None:
        self.users = users
        self._gateway = gateway
        self.cache = cache
        self.settings = settings
        self.price_of = {"pro": settings.stripe_price_pro, "team": settings.stripe_price_team}
        self.plan_of_price = {price: plan for plan, price in self.price_of.items()}

    @property
    def gateway(self) -> StripeGateway:
        if self._gateway is None:
            raise PaymentProviderUnavailable("Billing is not configured")
        return self._gateway

    @cached(CacheConfig.PLANS, scope=lambda: "plans")
    async def plans(self) -> list[PlanRead]:
        """The public plan catalogue."""
        return plan_catalogue(self.settings)

    async def checkout(self, user: User, data: CheckoutCreate, request_key: str) -> CheckoutSession:
        """A Checkout session; the same client key returns the same session."""
        for url in (data.success_url, data.cancel_url):
            if not is_allowed_redirect(url, self.settings.frontend_origins):
                raise InvalidRedirectUri()
        if user.subscription_status in PAID_STATUSES and user.plan != "free":
            raise AlreadySubscribed()
        customer_id = await self._customer(user)
        session_id, url = await self.gateway.create_checkout_session(
            customer_id=customer_id,
            user_id=user.id,
            price_id=self.price_of[data.plan],
            success_url=data.success_url,
            cancel_url=data.cancel_url,
            key=f"checkout:{user.id}:{data.plan}:{request_key}",
        )
        return CheckoutSession(session_id=session_id, url=url)

    async def _customer(self, user: User) -> str:
        if user.stripe_customer_id:
            return user.stripe_customer_id
        created = await self.gateway.create_customer(user.id, user.email)
        stored = await self.users.set_customer(user.id, created)
        await self.cache.invalidate(user_scope(user.id))
        return stored

    async def portal(self, user: User, return_url: str) -> PortalSession:
        if not is_allowed_redirect(return_url, self.settings.frontend_origins):
            raise InvalidRedirectUri()
        if not user.stripe_customer_id:
            raise NoBillingAccount()
        return PortalSession(
            url=await self.gateway.create_portal_session(user.stripe_customer_id, return_url)
        )

    async def set_cancel_at_period_end(self, user: User, cancel: bool) -> SubscriptionRead:
        """Cancel at the end of the paid period, or take that back."""
        if user.subscription is None or user.subscription_status not in PAID_STATUSES:
            raise NoSubscription()
        sub = await self.gateway.set_cancel_at_period_end(user.subscription.id, cancel)
        fields, stored = read_subscription(sub, self.plan_of_price, user.subscription.event_created)
        await self.users.apply_subscription(user.id, fields, stored, newer_only=False)
        await self.cache.invalidate(user_scope(user.id))
        return SubscriptionRead(
            plan=fields["plan"],
            status=fields["subscription_status"],
            current_period_end=stored.current_period_end,
            cancel_at_period_end=stored.cancel_at_period_end,
        )

    async def invoices(self, user: User, limit: int, starting_after: str | None) -> InvoicePage:
        if not user.stripe_customer_id:
            return InvoicePage(data=[], has_more=False)
        return await self._invoices(user.id, user.stripe_customer_id, limit, starting_after)

    @cached(CacheConfig.INVOICES, scope=lambda user_id, **_: invoices_scope(user_id))
    async def _invoices(
        self, user_id: str, customer_id: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        raw, has_more = await self.gateway.list_invoices(customer_id, limit, starting_after)
        return InvoicePage(
            data=[
                InvoiceRead(
                    id=invoice["id"],
                    number=invoice.get("number"),
                    status=invoice.get("status"),
                    amount_due=invoice.get("amount_due") or 0,
                    amount_paid=invoice.get("amount_paid") or 0,
                    currency=invoice.get("currency") or self.settings.plan_currency,
                    created=datetime.fromtimestamp(invoice.get("created") or 0, UTC),
                    hosted_invoice_url=invoice.get("hosted_invoice_url"),
                    invoice_pdf=invoice.get("invoice_pdf"),
                )
                for invoice in raw
            ],
            has_more=has_more,
        )
