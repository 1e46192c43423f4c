"""What every repository shares: id conversion and the current time."""

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

# A transaction's session, or None outside one.
Session = AsyncClientSession | None


def object_id(value: str) -> ObjectId | None:
    """The ObjectId for a 24-hex id string; None for anything else (which reads as 404)."""
    if len(value) != 24:
        return None
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


async def insert_new(collection: Any, doc: dict[str, Any], session: Any = None) -> Any:
    """Insert `doc` under an `_id` chosen here (a new ObjectId unless it has one) and return it.

    A duplicate-key error for a document whose `_id` is already stored can only be this very
    insert, applied by an attempt whose acknowledgement was lost: the driver retried it after
    the server restarted and forgot the first attempt. That is the success it is (which index
    the server names varies: the email's as often as the `_id`'s). Any other duplicate (an
    email taken by someone else) is raised. In a transaction a retry re-runs the whole
    transaction, whose first attempt was aborted, so there a duplicate is always raised.
    """
    doc.setdefault("_id", ObjectId())
    try:
        await collection.insert_one(doc, session=session)
    except DuplicateKeyError:
        if session is not None:
            raise
        if await collection.find_one({"_id": doc["_id"]}, {"_id": 1}) is None:
            raise
    return doc["_id"]


def utcnow() -> datetime:
    # MongoDB keeps milliseconds; trimming here makes stored and returned times equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def count_by_day(
    collection: Any, match: dict[str, Any], field: str = "created_at"
) -> dict[str, int]:
    """`YYYY-MM-DD` (UTC) → documents matching `match`, grouped by the day of `field`."""
    pipeline = [
        {"$match": match},
        {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": f"${field}"}},
                    "count": {"$sum": 1}}},
    ]  # fmt: skip
    rows = await (await collection.aggregate(pipeline)).to_list(None)
    return {row["_id"]: int(row["count"]) for row in rows}


async def count_by(
    collection: Any, field: str, match: dict[str, Any] | None = None
) -> dict[str, int]:
    """Value of `field` → how many documents have it (among those matching `match`)."""
    pipeline: list[dict[str, Any]] = [{"$match": match}] if match else []
    pipeline.append({"$group": {"_id": f"${field}", "count": {"$sum": 1}}})
    rows = await (await collection.aggregate(pipeline)).to_list(None)
    return {str(row["_id"]): int(row["count"]) for row in rows}
