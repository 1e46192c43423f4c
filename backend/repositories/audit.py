"""`audit_log`: one document per admin write; inserted, never updated or deleted."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from backend.repositories.base import insert_new, page_of, utcnow

COLLECTION = "audit_log"
INDEXES = [IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="newest")]


class AuditRecord(BaseModel):
    id: str
    actor_id: str
    action: str
    target: str
    at: datetime
    details: dict[str, Any]


class AuditRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[COLLECTION]

    async def record(
        self,
        actor_id: str,
        action: str,
        target: str,
        details: dict[str, Any],
        session: AsyncClientSession | None = None,
    ) -> Any:
        """Append an entry; its id."""
        doc: dict[str, Any] = {
            "actor_id": actor_id,
            "action": action,
            "target": target,
            "at": utcnow(),
            "details": details,
        }
        return await insert_new(self.collection, doc, session)

    async def completed(self, entry_id: Any, after: dict[str, Any]) -> None:
        """Add what the announced write left behind."""
        await self.collection.update_one({"_id": entry_id}, {"$set": {"details.after": after}})

    async def refused(self, entry_id: Any, code: str) -> None:
        """The write an entry announced did not happen (it was refused with `code`)."""
        await self.collection.update_one({"_id": entry_id}, {"$set": {"details.refused": code}})

    async def page(self, *, page: int, limit: int) -> tuple[list[AuditRecord], int]:
        docs, total = await page_of(
            self.collection,
            {},
            [("at", DESCENDING), ("_id", DESCENDING)],
            page=page,
            limit=limit,
            estimated_total=True,
        )
        return [AuditRecord(id=str(doc.pop("_id")), **doc) for doc in docs], total
