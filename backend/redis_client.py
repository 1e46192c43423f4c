"""The Redis client, when REDIS_URL is set; short timeouts so a stall never hangs a request."""

from redis.asyncio import Redis

from backend.config import Settings


def create_redis(settings: Settings) -> Redis | None:
    """A pooled async client (hiredis parser when installed), or None in embedded mode."""
    if settings.redis_url is None:
        return None
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=15,
        retry_on_timeout=False,
        client_name="devora-api",
    )
