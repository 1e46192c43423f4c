"""The MongoDB client: MongoDB in production, SecantusDB (MongoDB wire) locally and in tests."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pymongo
import structlog
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from backend.config import NO_DATABASE, Settings
from backend.generation import repository as jobs
from backend.repositories import INDEXES as COLLECTION_INDEXES

INDEXES = {**COLLECTION_INDEXES, **jobs.INDEXES}

log = structlog.get_logger("devora.db")

Document = dict[str, Any]
T = TypeVar("T")

# Time left after a transaction's budget to send its abort (one round trip) or finish its commit.
ABORT_MARGIN_S = 1.0

# MongoDB unreachable or too slow: the request answers 503 rather than 500 (or a hang).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionFailure,  # includes server selection and network timeouts
    ExecutionTimeout,
    WTimeoutError,
)


async def despite_cancel(work: Awaitable[T]) -> T:
    """Await `work` to its end even when the caller is canceled (then re-raise the cancel).
    For short units that must not stop half-way: a transaction, a write and its cache
    invalidation. Each database call inside has its own timeout, so the wait is bounded."""
    task = asyncio.ensure_future(work)
    canceled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            canceled = True
            continue
        if canceled:
            raise asyncio.CancelledError()
        return result


class Mongo:
    """Owns the client, the database handle and the state of index creation."""

    def __init__(self, settings: Settings) -> None:
        if settings.mongodb_url is None:
            raise ValueError(NO_DATABASE)
        self.timeout_s = settings.mongodb_timeout_ms / 1000
        # Two server selections' worth: a request meets a down database as a 503 within ~4 s.
        self.transaction_budget_s = 2 * self.timeout_s
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.mongodb_url.get_secret_value(),
            tz_aware=True,
            appname="devora-api",
            # Acknowledged by a majority of the replica set, so a failover cannot roll back
            # a write we answered for. MongoDB's default for replica sets; stated, not assumed.
            w="majority",
            serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
            connectTimeoutMS=settings.mongodb_timeout_ms,
            # Not timeoutMS: client-side operation timeouts also stretch server selection
            # to their length, and a request must fail fast when MongoDB is gone.
            socketTimeoutMS=settings.mongodb_timeout_ms * 5,
            maxPoolSize=settings.mongodb_max_pool_size,
        )
        self.db: AsyncDatabase[Document] = self.client.get_database(settings.mongodb_db)
        # Set once indexes exist and start-up data is in place (see main.prepare_database).
        self.ready = asyncio.Event()

    async def ping(self) -> None:
        """Raise unless the server answers within the selection timeout."""
        await asyncio.wait_for(self.db.command("ping"), self.timeout_s + 0.5)

    async def ensure_indexes(self, indexes: dict[str, list[IndexModel]] | None = None) -> None:
        """Create every declared index, retrying until MongoDB answers; idempotent."""
        wanted = INDEXES if indexes is None else indexes
        delay = 0.5
        while True:
            try:
                for collection, models in wanted.items():
                    if models:
                        await self.db[collection].create_indexes(models)
            except (PyMongoError, TimeoutError) as exc:
                log.error("mongodb_indexes_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            return

    async def transaction(
        self, work: Callable[[AsyncClientSession], Awaitable[T]], *, bounded: bool = True
    ) -> T:
        """Run `work` in a multi-document transaction, retried on transient errors (write
        conflicts included) by PyMongo's `with_transaction`. A cancellation waits for it to
        commit or abort: cut off mid-way, the transaction would stay open on the server and
        hold its documents against every other writer until the server's lifetime limit.

        `bounded` (a request's transactions): attempts stop after `transaction_budget_s`, with
        a timeout error (503), through PyMongo's own client-side timeout. Unbounded,
        `with_transaction` retries for up to 120 s, so a request must never use it: a client
        that gave up could still find its write committed later.

        The budget binds each attempt's `work`; the abort after a failed attempt, and the
        commit's retries, get `ABORT_MARGIN_S` more, so a spent attempt can still send its
        abort (PyMongo ignores a failed abort, leaving the transaction open on the server and
        its documents held against every other writer)."""

        async def run() -> T:
            async with self.client.start_session() as session:
                if not bounded:
                    return await session.with_transaction(work)
                deadline = time.monotonic() + self.transaction_budget_s

                async def attempt(session: AsyncClientSession) -> T:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:  # a retry after the budget: not transient, so final
                        raise ExecutionTimeout("the transaction's time budget is spent")
                    with pymongo.timeout(remaining):
                        return await work(session)

                with pymongo.timeout(self.transaction_budget_s + ABORT_MARGIN_S):
                    return await session.with_transaction(attempt)

        return await despite_cancel(run())

    async def close(self) -> None:
        await self.client.close()
