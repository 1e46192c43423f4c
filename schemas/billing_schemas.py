"""Billing shapes."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import Strict, example

PlanId = Literal["free", "pro", "team"]
PaidPlan = Literal["pro", "team"]
SubscriptionStatus = Literal["inactive", "trialing", "active", "past_due", "canceled"]
RedirectUrl = Annotated[str, Field(min_length=1, max_length=2048)]


class PlanRead(BaseModel):
    id: PlanId
    name: str
    price_cents: int
    currency: str
    interval: Literal["month"]
    generation_quota: int = Field(description="Generations per calendar month")
    features: list[str]


class SubscriptionRead(BaseModel):
    plan: PlanId
    status: SubscriptionStatus
    current_period_end: datetime | None
    cancel_at_period_end: bool


class CheckoutCreate(Strict):
    model_config = example(
        plan="pro",
        success_url="http://localhost:5173/billing/success",
        cancel_url="http://localhost:5173/billing",
    )
    plan: PaidPlan
    success_url: RedirectUrl
    cancel_url: RedirectUrl


class CheckoutSession(BaseModel):
    session_id: str
    url: str


class PortalCreate(Strict):
    model_config = example(return_url="http://localhost:5173/billing")
    return_url: RedirectUrl


class PortalSession(BaseModel):
    url: str


class InvoiceRead(BaseModel):
    id: str
    number: str | None
    status: str | None
    amount_due: int
    amount_paid: int
    currency: str
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None


class InvoicePage(BaseModel):
    data: list[InvoiceRead]
    has_more: bool


class WebhookReceipt(BaseModel):
    received: Literal[True] = True
    duplicate: bool
