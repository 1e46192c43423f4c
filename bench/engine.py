"""The database side of the benchmarks: seeding, and the engine's own rate for our operations.

`ceiling()` runs exactly the MongoDB operations one webhook event costs the inbox, with the
same filters, from one `AsyncMongoClient` at the same concurrency wrk uses, and nothing else:
no HTTP, no signature check, no service code. The inbox's rate divided by this is the share of
the engine's capacity that our code delivers; the rest is our overhead.
"""

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

KEEP_FOR = timedelta(days=7)
ABANDONED_AFTER = timedelta(minutes=2)


def _event_doc(event_id: str, now: datetime) -> dict[str, Any]:
    """A stored event shaped as `StripeEventRepository.claim` writes it."""
    return {
        "_id": event_id,
        "type": "invoice.paid",
        "status": "processing",
        "attempts": 1,
        "received_at": now,
        "claimed_at": now,
        "processed_at": None,
        "error": None,
        "payload": '{"id": "' + event_id + '"}',
        "expires_at": now + KEEP_FOR,
    }


async def seed_events(url: str, database: str, count: int) -> None:
    """`count` processed events in the inbox, as if received over the last days."""
    async with AsyncMongoClient(url) as client:
        events = client[database]["stripe_events"]
        now = datetime.now(UTC)
        for start in range(0, count, 5_000):
            batch = []
            for _ in range(start, min(count, start + 5_000)):
                doc = _event_doc(f"evt_seed_{secrets.token_hex(12)}", now)
                doc.update(status="processed", processed_at=now)
                batch.append(doc)
            await events.insert_many(batch, ordered=False)


async def seed_projects(url: str, database: str, count: int) -> None:
    """`count` projects of other users (one small file each), spread over 2,000 owners."""
    async with AsyncMongoClient(url) as client:
        projects = client[database]["projects"]
        owners = [str(ObjectId()) for _ in range(2_000)]
        now = datetime.now(UTC)
        for start in range(0, count, 2_000):
            batch = [
                {
                    "owner_id": owners[n % len(owners)],
                    "name": f"Other project {n}",
                    "description": "Seeded by the benchmark",
                    "files": [
                        {"path": "main.py", "content": "print('hi')\n", "language": "python",
                         "size": 12, "updated_at": now}
                    ],
                    "file_count": 1,
                    "total_size": 12,
                    "github_repo_url": None,
                    "vercel_url": None,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(count, start + 2_000))
            ]  # fmt: skip
            await projects.insert_many(batch, ordered=False)


async def _new_event(db: Any, n: int) -> None:
    """insert the event, look its customer up, mark it processed (three operations)."""
    event_id = f"evt_ceiling_{n}_{secrets.token_hex(6)}"
    now = datetime.now(UTC)
    await db["stripe_events"].insert_one(_event_doc(event_id, now))
    await db["users"].find_one(
        {"stripe_customer_id": f"cus_{secrets.token_hex(6)}"}, {"password_hash": 0}
    )
    await db["stripe_events"].update_one(
        {"_id": event_id},
        {"$set": {"status": "processed", "error": None, "processed_at": now}},
    )


async def _duplicate_event(db: Any, event_id: str) -> None:
    """the insert that finds the id taken, then the claim that finds nothing to retry."""
    now = datetime.now(UTC)
    with contextlib.suppress(DuplicateKeyError):
        await db["stripe_events"].insert_one(_event_doc(event_id, now))
    await db["stripe_events"].find_one_and_update(
        {
            "_id": event_id,
            "$or": [
                {"status": "failed"},
                {"status": "processing", "claimed_at": {"$lt": now - ABANDONED_AFTER}},
            ],
        },
        {"$set": {"status": "processing", "claimed_at": now}, "$inc": {"attempts": 1}},
    )


async def _rate(
    operation: Callable[[int], Awaitable[None]], duration_s: float, workers: int
) -> float:
    counter = itertools.count()
    deadline = time.monotonic() + duration_s

    async def worker() -> int:
        done = 0
        while time.monotonic() < deadline:
            await operation(next(counter))
            done += 1
        return done

    started = time.monotonic()
    done = sum(await asyncio.gather(*(worker() for _ in range(workers))))
    return done / (time.monotonic() - started)


async def ceiling(
    url: str, database: str, kind: str, *, duration_s: float, workers: int, duplicate_id: str = ""
) -> float:
    """Events per second the engine sustains for the operations of a `new` or `duplicate` event."""
    async with AsyncMongoClient(url, w="majority") as client:
        db = client[database]
        if kind == "new":
            return await _rate(lambda n: _new_event(db, n), duration_s, workers)
        return await _rate(lambda n: _duplicate_event(db, duplicate_id), duration_s, workers)
