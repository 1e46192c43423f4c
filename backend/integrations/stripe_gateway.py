"""Stripe through `StripeClient` and its `*_async` methods over httpx — never the global API.

Retries: the client's own `max_network_retries` covers connection errors, 409 and 5xx and
reuses one Idempotency-Key across them. It does not retry 429, so `_call` backs off (about
1 s, 2 s, 4 s with jitter) and sends the same key again. Keys come from the business operation,
so a client retrying our endpoint reaches the same Stripe object.
"""

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import stripe
import structlog
from stripe import RequestOptions
from stripe.params import InvoiceListParams

from backend.config import Settings
from backend.errors import AppError, BadRequest, IdempotencyKeyReused

log = structlog.get_logger("devora.stripe")

T = TypeVar("T")


class PaymentProviderUnavailable(AppError):
    status, code, title = 503, "payment_provider_unavailable", "The payment provider is unavailable"


class PaymentProviderError(AppError):
    status, code, title = 502, "payment_provider_error", "The payment provider refused the request"


class InvalidCursor(BadRequest):
    code, title = "invalid_cursor", "starting_after names no invoice of yours"


class InvalidSignature(BadRequest):
    code, title = "invalid_signature", "Missing or invalid Stripe-Signature"


class InvalidPayload(BadRequest):
    code, title = "invalid_payload", "The webhook body is not a Stripe event"


def _signed_at(header: str) -> int:
    """The header's timestamp as stripe-python read it: the first `t=` part (it verified that)."""
    items = [part.split("=", 2) for part in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


def _plain(obj: Any) -> dict[str, Any]:
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    if not isinstance(data, dict):
        raise TypeError("expected a Stripe object")
    return data


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        assert settings.stripe_secret_key is not None
        self.http = stripe.HTTPXClient(timeout=settings.http_timeout_s)
        self.client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            http_client=self.http,
            max_network_retries=settings.stripe_max_network_retries,
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        )
        self.rate_limit_retries = settings.stripe_rate_limit_retries
        self.backoff_s = settings.stripe_rate_limit_backoff_s
        secret = settings.stripe_webhook_secret
        self.webhook_secret = secret.get_secret_value() if secret else None
        self.tolerance_s = settings.stripe_webhook_tolerance_s

    async def _call(
        self, operation: Callable[[RequestOptions], Awaitable[T]], key: str | None
    ) -> T:
        options: RequestOptions = {"idempotency_key": key} if key else {}
        for attempt in range(self.rate_limit_retries + 1):
            try:
                return await operation(options)
            except stripe.RateLimitError as exc:
                if attempt == self.rate_limit_retries:
                    log.warning("stripe_rate_limited", attempts=attempt + 1)
                    raise PaymentProviderUnavailable() from exc
                delay = self.backoff_s * 2**attempt * random.uniform(0.75, 1.25)  # noqa: S311
                await asyncio.sleep(delay)
            except (stripe.APIConnectionError, stripe.APIError) as exc:
                log.warning("stripe_unavailable", error=type(exc).__name__)
                raise PaymentProviderUnavailable() from exc
            except stripe.IdempotencyError as exc:
                # Our keys carry the operation, so only a client's key sent again with
                # other parameters gets here.
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different body"
                ) from exc
            except stripe.InvalidRequestError as exc:
                if exc.param == "starting_after":
                    raise InvalidCursor() from exc
                raise self._refused(exc) from exc
            except stripe.StripeError as exc:  # authentication, permission: our configuration
                raise self._refused(exc) from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _refused(exc: stripe.StripeError) -> PaymentProviderError:
        """Stripe said no to a request built from our own data (a customer deleted at Stripe,
        a wrong price or key): the client can do nothing about it, we must look."""
        log.error(
            "stripe_refused",
            error=type(exc).__name__,
            status=exc.http_status,
            code=exc.code,
            message=exc.user_message,
            request_id=exc.request_id,
        )
        return PaymentProviderError()

    async def create_customer(self, user_id: str, email: str) -> str:
        """One customer per user, however often this is retried."""
        customer = await self._call(
            lambda options: self.client.v1.customers.create_async(
                params={"email": email, "metadata": {"user_id": user_id}}, options=options
            ),
            f"customer:{user_id}",
        )
        return str(customer.id)

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        user_id: str,
        price_id: str,
        success_url: str,
        cancel_url: str,
        key: str,
    ) -> tuple[str, str]:
        session = await self._call(
            lambda options: self.client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "client_reference_id": user_id,
                    "line_items": [{"price": price_id, "quantity": 1}],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                options=options,
            ),
            key,
        )
        return str(session.id), str(session.url)

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        session = await self._call(
            lambda options: self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}, options=options
            ),
            None,
        )
        return str(session.url)

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> dict[str, Any]:
        subscription = await self._call(
            lambda options: self.client.v1.subscriptions.update_async(
                subscription_id, params={"cancel_at_period_end": cancel}, options=options
            ),
            None,
        )
        return _plain(subscription)

    async def _retrieve(
        self, fetch: Callable[[RequestOptions], Awaitable[Any]]
    ) -> dict[str, Any] | None:
        """One object as Stripe has it now; None when Stripe does not know its id."""

        async def fetch_or_none(options: RequestOptions) -> Any:
            try:
                return await fetch(options)
            except stripe.InvalidRequestError as exc:
                if exc.http_status == 404:
                    return None
                raise

        found = await self._call(fetch_or_none, None)
        return None if found is None else _plain(found)

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any] | None:
        return await self._retrieve(
            lambda options: self.client.v1.customers.retrieve_async(customer_id, options=options)
        )

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        return await self._retrieve(
            lambda options: self.client.v1.subscriptions.retrieve_async(
                subscription_id, options=options
            )
        )

    async def list_invoices(
        self, customer_id: str, limit: int, starting_after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        params: InvoiceListParams = {"customer": customer_id, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = await self._call(
            lambda options: self.client.v1.invoices.list_async(params=params, options=options),
            None,
        )
        return [_plain(invoice) for invoice in page.data], bool(page.has_more)

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event, if Stripe signed this exact body within the tolerance, past or future."""
        if self.webhook_secret is None:
            raise PaymentProviderUnavailable("Stripe webhooks are not configured")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload() from exc
        try:
            stripe.WebhookSignature.verify_header(
                text, signature, self.webhook_secret, self.tolerance_s
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature() from exc
        # stripe-python accepts any future timestamp; a far-future one is a replay tool.
        if _signed_at(signature or "") > time.time() + self.tolerance_s:
            raise InvalidSignature("Signature timestamp is in the future")
        try:
            event = json.loads(text)
        except ValueError as exc:
            raise InvalidPayload() from exc
        if not (
            isinstance(event, dict)
            and isinstance(event.get("id"), str)
            and isinstance(event.get("type"), str)
            and isinstance(event.get("created"), int)
            and isinstance(event.get("data", {}).get("object"), dict)
        ):
            raise InvalidPayload()
        return event

    async def aclose(self) -> None:
        await self.http.close_async()  # type: ignore[no-untyped-call]
