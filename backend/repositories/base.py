"""What every repository shares: id conversion, the current time, paging and counting."""

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


async def page_of(
    collection: Any,
    query: dict[str, Any],
    sort: list[tuple[str, int]],
    *,
    page: int,
    limit: int,
    projection: dict[str, Any] | None = None,
    estimated_total: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Page `page` (from 1, `limit` a page) of the documents matching `query` in `sort` order,
    and how many documents match.

    `sort` must be one an index serves for `query`, or the server sorts every match in memory.
    `estimated_total` takes the count from the collection's metadata rather than counting the
    matches (no scan), so it is for an empty `query` only.
    """
    assert not (estimated_total and query), "an estimated count ignores the filter"
    cursor = collection.find(query, projection).sort(sort).skip((page - 1) * limit).limit(limit)
    docs = await cursor.to_list(length=limit)
    if estimated_total:
        return docs, await collection.estimated_document_count()
    return docs, await collection.count_documents(query)


def utcnow() -> datetime:
    # MongoDB keeps milliseconds; trimming here makes stored and returned times equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def count_by_day(
    collection: Any, match: dict[str, Any], field: str = "created_at"
) -> dict[str, int]:
    """`YYYY-MM-DD` (UTC) → documents matching `match`, grouped by the day of `field`."""
    day = {"$dateToString": {"format": "%Y-%m-%d", "date": f"${field}"}}
    pipeline = [{"$match": match}, {"$group": {"_id": day, "count": {"$sum": 1}}}]
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
