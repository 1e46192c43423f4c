"""Admin views: users with their counts, stats for the dashboard, webhook log, audit log."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from schemas.common import ResourceId, Strict, example
from schemas.generation_schemas import JobRead
from schemas.user_schemas import UserRead


class AdminUserRead(UserRead):
    project_count: int
    generation_count: int
    month_tokens: int = Field(description="Model tokens spent this calendar month (UTC)")
    month_cost: str = Field(description="This month's model spend, US dollars (decimal string)")
    stripe_customer_id: str | None


class AdminUserUpdate(Strict):
    model_config = example(plan="pro")
    role: Literal["user", "admin"] | None = None
    is_active: bool | None = None
    plan: Literal["free", "pro", "team"] | None = None


class DayCount(BaseModel):
    date: date
    count: int


class DayAmount(BaseModel):
    date: date
    usd: str = Field(description="US dollars, a decimal string")


class UserTotals(BaseModel):
    total: int
    active: int
    verified: int
    by_plan: dict[str, int]


class ProjectTotals(BaseModel):
    total: int


class GenerationTotals(BaseModel):
    total: int
    by_status: dict[str, int]
    last_24h: int


class SubscriptionTotals(BaseModel):
    active: int
    past_due: int
    canceled: int


class CacheTotals(BaseModel):
    hits: int
    misses: int
    hit_ratio: float


class Series(BaseModel):
    signups: list[DayCount]
    generations: list[DayCount]
    failed_generations: list[DayCount]
    tokens: list[DayCount] = Field(description="Model tokens of the jobs created each day")
    cost: list[DayAmount] = Field(description="Model spend of the jobs created each day")


class StatsRead(BaseModel):
    users: UserTotals
    projects: ProjectTotals
    generations: GenerationTotals
    subscriptions: SubscriptionTotals
    cache: CacheTotals
    series: Series


class CacheInvalidate(Strict):
    model_config = example(prefix="projects:list")
    prefix: (
        Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9:_-]+$")] | None
    ) = None
    user_id: Annotated[ResourceId, Field(max_length=64)] | None = None


class Invalidated(BaseModel):
    invalidated: int


class WebhookEventRead(BaseModel):
    id: str
    type: str
    status: Literal["processed", "failed", "processing"]
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    error: str | None


class CustomerBatch(BaseModel):
    data: list[dict[str, Any]]
    errors: list[dict[str, str]]


class AdminJobRead(JobRead):
    user_id: str


class AuditEntry(BaseModel):
    id: str
    actor_id: str
    action: str
    target: str
    at: datetime
    details: dict[str, Any]
