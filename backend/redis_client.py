"""The Redis client, when REDIS_URL is set; short timeouts so a stall never hangs a request."""

from redis.asyncio import BlockingConnectionPool, Redis

from backend.config import Settings


def create_redis(settings: Settings) -> Redis | None:
    """A pooled async client (hiredis parser when installed), or None in embedded mode."""
    if settings.redis_url is None:
        return None
    # Blocking: past max_connections a caller waits (up to the timeout) for a connection
    # instead of failing at once, which under a burst would trip the breakers for nothing.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=15,
        client_name="devora-api",
    )
    return Redis(connection_pool=pool)
