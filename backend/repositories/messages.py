"""The `messages` collection: a project's conversation, oldest first."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from backend.repositories.base import insert_new, page_of, utcnow

COLLECTION = "messages"
INDEXES = [
    IndexModel([("project_id", ASCENDING), ("created_at", ASCENDING)], name="project_created"),
]


class Message(BaseModel):
    id: str
    role: str
    content: str
    created_at: datetime


def _message(doc: dict[str, Any]) -> Message:
    return Message(
        id=str(doc["_id"]), role=doc["role"], content=doc["content"], created_at=doc["created_at"]
    )


class MessageRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[COLLECTION]

    async def create(
        self,
        project_id: str,
        role: str,
        content: str,
        session: AsyncClientSession | None = None,
    ) -> Message:
        doc: dict[str, Any] = {
            "project_id": project_id,
            "role": role,
            "content": content,
            "created_at": utcnow(),
        }
        await insert_new(self.collection, doc, session)
        return _message(doc)

    async def latest(self, project_id: str, limit: int) -> list[Message]:
        """The last `limit` messages, oldest first (`project_created` index, walked back)."""
        cursor = (
            self.collection.find({"project_id": project_id})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [_message(doc) for doc in reversed(await cursor.to_list(length=limit))]

    async def page(self, project_id: str, *, page: int, limit: int) -> tuple[list[Message], int]:
        docs, total = await page_of(
            self.collection,
            {"project_id": project_id},
            [("created_at", ASCENDING), ("_id", ASCENDING)],
            page=page,
            limit=limit,
        )
        return [_message(doc) for doc in docs], total

    async def delete_for_project(self, project_id: str) -> None:
        await self.collection.delete_many({"project_id": project_id})
