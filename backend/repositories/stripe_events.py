"""The `stripe_events` collection: the webhook inbox, one document per Stripe event id.

The event is recorded (its id is the unique `_id`) before it is handled, so a second delivery
finds it; claiming it again is an atomic update that only a failed or abandoned handling
allows. Documents expire after 7 days.
"""

from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backend.repositories.base import page_of, utcnow

COLLECTION = "stripe_events"
KEEP_FOR = timedelta(days=7)

INDEXES = [
    IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl"),
    IndexModel([("received_at", DESCENDING)], name="received_at"),
    IndexModel([("status", ASCENDING), ("type", ASCENDING)], name="status_type"),
]


class Claim(Enum):
    NEW = "new"
    RETRY = "retry"
    DUPLICATE = "duplicate"


class StripeEventRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], abandoned_after: timedelta) -> None:
        self.collection = db[COLLECTION]
        # A handling not finished after this long died with its process: it may be retried.
        self.abandoned_after = abandoned_after

    async def claim(self, event_id: str, event_type: str, payload: str) -> Claim:
        """Record the event and take it for handling, unless it is handled or being handled."""
        now = utcnow()
        try:
            await self.collection.insert_one(
                {
                    "_id": event_id,
                    "type": event_type,
                    "status": "processing",
                    "attempts": 1,
                    "received_at": now,
                    "claimed_at": now,
                    "processed_at": None,
                    "error": None,
                    "payload": payload,
                    "expires_at": now + KEEP_FOR,
                }
            )
            return Claim.NEW
        except DuplicateKeyError:
            pass
        retried = await self.collection.find_one_and_update(
            {
                "_id": event_id,
                "$or": [
                    {"status": "failed"},
                    {"status": "processing", "claimed_at": {"$lt": now - self.abandoned_after}},
                ],
            },
            {"$set": {"status": "processing", "claimed_at": now}, "$inc": {"attempts": 1}},
        )
        return Claim.RETRY if retried else Claim.DUPLICATE

    async def finish(self, event_id: str, error: str | None) -> None:
        await self.collection.update_one(
            {"_id": event_id},
            {
                "$set": {
                    "status": "failed" if error else "processed",
                    "error": error,
                    "processed_at": None if error else utcnow(),
                }
            },
        )


class StoredEvent(BaseModel):
    id: str
    type: str
    status: str
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    error: str | None
    payload: str


def _stored(doc: dict[str, Any]) -> StoredEvent:
    fields = {k: v for k, v in doc.items() if k in StoredEvent.model_fields}
    return StoredEvent(id=doc["_id"], **fields)


class StripeEventLog:
    """The inbox as the admin reads it (`received_at`, `status_type` indexes)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[COLLECTION]

    async def page(
        self, *, status: str | None, kind: str | None, page: int, limit: int
    ) -> tuple[list[StoredEvent], int]:
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if kind:
            query["type"] = kind
        docs, total = await page_of(
            self.collection, query, [("received_at", DESCENDING)], page=page, limit=limit
        )
        return [_stored(doc) for doc in docs], total

    async def get(self, event_id: str) -> StoredEvent | None:
        doc = await self.collection.find_one({"_id": event_id})
        return _stored(doc) if doc else None
