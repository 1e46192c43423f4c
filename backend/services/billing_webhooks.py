"""The Stripe webhook inbox: verify, record before handling, take effect once, in order.

Subscription state is applied only over state from an older event. A payload older than what
is stored (or as old) is not trusted: the subscription is fetched from Stripe and that is
stored, so `updated` before `created`, or `deleted` before `updated`, still ends right.
"""

from typing import Any

import structlog

from backend.cache import Cache
from backend.db import UNAVAILABLE_ERRORS
from backend.errors import AppError
from backend.integrations.stripe_gateway import StripeGateway
from backend.metrics import Metrics
from backend.repositories.stripe_events import Claim, StripeEventRepository
from backend.repositories.users import UserRepository
from backend.services.billing import invoices_scope, read_subscription
from backend.services.users import user_scope
from schemas.billing_schemas import WebhookReceipt

log = structlog.get_logger("devora.webhooks")

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
INVOICE_EVENTS = ("invoice.paid", "invoice.payment_failed")


class WebhookFailed(AppError):
    status, code, title = 500, "webhook_failed", "Handling the event failed; Stripe will retry"


class WebhookInbox:
    def __init__(
        self,
        *,
        events: StripeEventRepository,
        users: UserRepository,
        gateway: StripeGateway,
        cache: Cache,
        metrics: Metrics,
        prices: dict[str, str],
    ) -> None:
        self.events = events
        self.users = users
        self.gateway = gateway
        self.cache = cache
        self.metrics = metrics
        self.plan_of_price = {price: plan for plan, price in prices.items()}

    async def receive(self, payload: bytes, signature: str | None) -> WebhookReceipt:
        """Verify and record the event, then handle it unless it was handled already."""
        try:
            event = self.gateway.verify_event(payload, signature)
        except AppError:
            self.metrics.webhook_events.labels("unknown", "invalid").inc()
            raise
        claim = await self.events.claim(event["id"], event["type"], payload.decode())
        if claim is Claim.DUPLICATE:
            self.metrics.webhook_events.labels(event["type"], "duplicate").inc()
            return WebhookReceipt(duplicate=True)
        await self.process(event)
        return WebhookReceipt(duplicate=False)

    async def process(self, event: dict[str, Any]) -> None:
        try:
            await self._handle(event)
        except UNAVAILABLE_ERRORS:
            # The database is gone: recording the failure would only wait for it too. The
            # event stays claimed; a delivery after STRIPE_WEBHOOK_ABANDONED_AFTER_S handles it.
            self.metrics.webhook_events.labels(event["type"], "failed").inc()
            raise
        except Exception as exc:
            log.exception("webhook_failed", event_id=event["id"], type=event["type"])
            await self.events.finish(event["id"], f"{type(exc).__name__}: {exc}"[:500])
            self.metrics.webhook_events.labels(event["type"], "failed").inc()
            raise WebhookFailed() from exc
        await self.events.finish(event["id"], None)
        self.metrics.webhook_events.labels(event["type"], "processed").inc()

    async def _handle(self, event: dict[str, Any]) -> None:
        kind, obj, created = event["type"], event["data"]["object"], event["created"]
        if kind == "checkout.session.completed":
            await self._checkout_completed(obj, created)
        elif kind in SUBSCRIPTION_EVENTS:
            await self._subscription(obj, created, deleted=kind.endswith(".deleted"))
        elif kind in INVOICE_EVENTS:
            await self._invoice(obj, created)
        # Other types are recorded and acknowledged.

    async def _checkout_completed(self, session: dict[str, Any], created: int) -> None:
        user_id, customer = session.get("client_reference_id"), session.get("customer")
        if isinstance(user_id, str) and isinstance(customer, str):
            await self.users.set_customer(user_id, customer)
            await self.cache.invalidate(user_scope(user_id))
        if isinstance(session.get("subscription"), str):
            await self._refresh(session["subscription"], customer, created)

    async def _invoice(self, invoice: dict[str, Any], created: int) -> None:
        user = await self.users.get_by_customer(str(invoice.get("customer")))
        if user is not None:
            await self.cache.invalidate(invoices_scope(user.id))
        if isinstance(invoice.get("subscription"), str):
            await self._refresh(invoice["subscription"], invoice.get("customer"), created)

    async def _subscription(self, sub: dict[str, Any], created: int, *, deleted: bool) -> None:
        user = await self.users.get_by_customer(str(sub.get("customer")))
        if user is None:
            log.warning("webhook_unknown_customer", customer=sub.get("customer"))
            return
        current = user.subscription
        if (
            current is not None
            and current.id != sub["id"]
            and (deleted or sub.get("status") == "canceled")
        ):
            return  # the end of an older subscription; the stored one is the user's current
        fields, stored = read_subscription(sub, self.plan_of_price, created, deleted=deleted)
        if not await self.users.apply_subscription(user.id, fields, stored, newer_only=True):
            await self._refresh(sub["id"], sub.get("customer"), created)
        await self.cache.invalidate(user_scope(user.id))

    async def _refresh(self, subscription_id: str, customer: Any, created: int) -> None:
        """Store the subscription as Stripe has it now (for payloads we cannot order)."""
        user = await self.users.get_by_customer(str(customer))
        if user is None:
            return
        fresh = await self.gateway.retrieve_subscription(subscription_id)
        if fresh is None:
            fresh, deleted = {"id": subscription_id, "status": "canceled"}, True
        else:
            deleted = False
        stamp = max(created, user.subscription.event_created if user.subscription else 0)
        fields, stored = read_subscription(fresh, self.plan_of_price, stamp, deleted=deleted)
        await self.users.apply_subscription(user.id, fields, stored, newer_only=False)
        await self.cache.invalidate(user_scope(user.id))
