"""The Redis client, when REDIS_URL is set; short timeouts so a stall never hangs a request."""

import asyncio
import functools
import typing
from typing import Any

from pydantic import SecretStr
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from backend.config import Settings


class WaitingConnectionPool(ConnectionPool):
    """At most `max_connections`; past that a caller waits (up to `timeout`) for one to be
    released instead of failing at once, which under a burst would trip the breakers for
    nothing. redis-py's `BlockingConnectionPool` does the same but enters a Condition and a
    timeout scope on every command; this pool costs nothing extra until it is full."""

    def __init__(self, *, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._freed = asyncio.Condition()
        self._released = 0  # a generation count: a release between a miss and a wait counts
        self._waiting = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        seen = self._released
        try:
            return await self._take(*args, **kwargs)
        except MaxConnectionsError:
            pass
        self._waiting += 1
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    async with self._freed:
                        await self._freed.wait_for(functools.partial(self._freed_since, seen))
                    seen = self._released
                    try:
                        return await self._take(*args, **kwargs)
                    except MaxConnectionsError:
                        continue  # a caller on the fast path took it first
        except TimeoutError as exc:
            raise RedisConnectionError("No connection available.") from exc
        finally:
            self._waiting -= 1

    async def _take(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        return typing.cast(AbstractConnection, connection)

    def _freed_since(self, seen: int) -> bool:
        return self._released != seen

    async def release(self, connection: AbstractConnection) -> None:
        await super().release(connection)
        self._released += 1
        if self._waiting:
            async with self._freed:
                self._freed.notify()


def create_redis(url: SecretStr | None, settings: Settings) -> Redis | None:
    """A pooled async client (hiredis parser when installed) for `url`, or None without one."""
    if url is None:
        return None
    pool = WaitingConnectionPool.from_url(
        url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=15,
        client_name="devora-api",
    )
    return Redis(connection_pool=pool)
