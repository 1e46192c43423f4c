"""The Redis client, when REDIS_URL is set; short timeouts so a stall never hangs a request."""

from pydantic import SecretStr
from redis.asyncio import BlockingConnectionPool, Redis

from backend.config import Settings


def create_redis(url: SecretStr | None, settings: Settings) -> Redis | None:
    """A pooled async client (hiredis parser when installed) for `url`, or None without one."""
    if url is None:
        return None
    # Blocking: past max_connections a caller waits (up to the timeout) for a connection
    # instead of failing at once, which under a burst would trip the breakers for nothing.
    pool = BlockingConnectionPool.from_url(
        url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=15,
        client_name="devora-api",
    )
    return Redis(connection_pool=pool)
