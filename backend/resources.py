"""The clients the lifespan builds once and every request reaches through dependencies."""

from dataclasses import dataclass

from redis.asyncio import Redis

from backend.cache import Cache
from backend.config import Settings
from backend.db import Mongo
from backend.generation.events import EventHub
from backend.integrations.email import Mailer
from backend.integrations.oauth import OAuthProvider
from backend.integrations.stripe_gateway import StripeGateway
from backend.jobs import JobQueue
from backend.metrics import Metrics
from backend.rate_limiter import RateLimiter
from backend.security import PasswordHasher, TokenSigner
from backend.services.project_rules import Caps


@dataclass(slots=True)
class Resources:
    settings: Settings
    metrics: Metrics
    mongo: Mongo
    redis: Redis | None  # counters and queue
    cache_redis: Redis | None  # the same client unless CACHE_REDIS_URL is set
    cache: Cache
    rate_limiter: RateLimiter
    signer: TokenSigner
    hasher: PasswordHasher
    mailer: Mailer
    oauth_providers: dict[str, OAuthProvider]
    stripe: StripeGateway | None
    queue: JobQueue
    hub: EventHub
    caps: Caps
