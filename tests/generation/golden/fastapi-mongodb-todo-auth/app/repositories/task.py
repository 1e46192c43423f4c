"""`tasks` documents: queries, id conversion and storage types."""

import re
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database

from app.models.task import COLLECTION

# Stored as strings: dates as ISO (BSON has datetimes only), URLs and UUIDs in their text form.
_DATES = ['due']
_TEXTS = []


def _oid(item_id: str) -> ObjectId | None:
    try:
        return ObjectId(item_id)
    except (InvalidId, TypeError):
        return None


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    stored = dict(values)
    for key in _DATES:
        if stored.get(key) is not None:
            stored[key] = stored[key].isoformat()
    for key in _TEXTS:
        if stored.get(key) is not None:
            stored[key] = str(stored[key])
    return stored


def _read(doc: dict[str, Any]) -> dict[str, Any]:
    doc["id"] = str(doc.pop("_id"))
    doc.pop("owner_id", None)
    return doc


def _now() -> datetime:
    # MongoDB keeps milliseconds: trimmed here, what is answered is what is stored.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TaskRepository:
    """One account's tasks: another's are invisible here."""

    def __init__(self, db: Database, owner_id: str) -> None:
        self.collection = db[COLLECTION]
        self.owner_id = owner_id

    def _visible(self, query: dict[str, Any]) -> dict[str, Any]:
        return {**query, "owner_id": self.owner_id, "deleted_at": None}

    def list(
        self, *, offset: int, limit: int, q: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if q:
            pattern = {"$regex": re.escape(q), "$options": "i"}
            query["$or"] = [{"title": pattern}]
        query = self._visible(query)
        cursor = self.collection.find(query).sort("_id", DESCENDING).skip(offset).limit(limit)
        return [_read(doc) for doc in cursor], self.collection.count_documents(query)

    def get(self, item_id: str) -> dict[str, Any] | None:
        oid = _oid(item_id)
        doc = self.collection.find_one(self._visible({"_id": oid})) if oid else None
        return _read(doc) if doc else None

    def create(self, values: dict[str, Any]) -> dict[str, Any]:
        doc = _storable(values)
        doc["owner_id"] = self.owner_id
        doc["deleted_at"] = None
        doc["_id"] = self.collection.insert_one(doc).inserted_id
        return _read(doc)

    def update(self, item_id: str, values: dict[str, Any]) -> dict[str, Any] | None:
        oid = _oid(item_id)
        if oid is None:
            return None
        changes = _storable(values)
        if not changes:
            return self.get(item_id)
        doc = self.collection.find_one_and_update(
            self._visible({"_id": oid}), {"$set": changes}, return_document=ReturnDocument.AFTER
        )
        return _read(doc) if doc else None

    def delete(self, item_id: str) -> bool:
        oid = _oid(item_id)
        if oid is None:
            return False
        result = self.collection.update_one(
            self._visible({"_id": oid}), {"$set": {"deleted_at": _now()}}
        )
        return result.modified_count == 1
