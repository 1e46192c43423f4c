"""The clients the lifespan builds once and every request reaches through dependencies."""

from dataclasses import dataclass

from redis.asyncio import Redis

from backend.config import Settings
from backend.db import Mongo
from backend.metrics import Metrics


@dataclass(slots=True)
class Resources:
    settings: Settings
    metrics: Metrics
    mongo: Mongo
    redis: Redis | None
