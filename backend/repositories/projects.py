"""The `projects` collection; files live inside their project document.

Every change is one atomic single-document update whose filter re-checks the caps
(file count, total bytes), so concurrent writers cannot push a project past them. Replacing or
removing a file needs its old size: the update's filter pins that size, and a writer that lost
a race simply reads again (compare-and-swap), never overwriting another's change.
"""

import re
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from backend.repositories.base import count_by, insert_new, object_id, page_of, utcnow

COLLECTION = "projects"
INDEXES = [
    IndexModel([("owner_id", ASCENDING), ("updated_at", DESCENDING)], name="owner_updated"),
    IndexModel([("owner_id", ASCENDING), ("created_at", DESCENDING)], name="owner_created"),
    IndexModel([("owner_id", ASCENDING), ("name", ASCENDING)], name="owner_name"),
]

SORTS: dict[str, list[tuple[str, int]]] = {
    "-updated_at": [("updated_at", DESCENDING), ("_id", DESCENDING)],
    "updated_at": [("updated_at", ASCENDING), ("_id", ASCENDING)],
    "-created_at": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "created_at": [("created_at", ASCENDING), ("_id", ASCENDING)],
    "name": [("name", ASCENDING), ("_id", ASCENDING)],
    "-name": [("name", DESCENDING), ("_id", DESCENDING)],
}
_SUMMARY = {"files": 0}
_CAS_ATTEMPTS = 8


class ProjectFile(BaseModel):
    path: str
    content: str
    language: str
    size: int
    updated_at: datetime


class ProjectSummary(BaseModel):
    id: str
    name: str
    description: str
    file_count: int
    github_repo_url: str | None
    vercel_url: str | None
    created_at: datetime
    updated_at: datetime


class Project(ProjectSummary):
    files: list[ProjectFile]
    # Raised by every change; the ETag.
    version: int


class Limits(BaseModel):
    max_files: int
    max_total_bytes: int


class WriteResult(Enum):
    DONE = "done"
    MISSING = "missing"
    TOO_MANY_FILES = "too_many_files"
    TOO_LARGE = "too_large"


def _summary(doc: dict[str, Any]) -> ProjectSummary:
    return ProjectSummary(
        id=str(doc["_id"]),
        name=doc["name"],
        description=doc.get("description", ""),
        file_count=doc.get("file_count", 0),
        github_repo_url=doc.get("github_repo_url"),
        vercel_url=doc.get("vercel_url"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _project(doc: dict[str, Any]) -> Project:
    return Project(
        **_summary(doc).model_dump(),
        files=[ProjectFile.model_validate(file) for file in doc.get("files", [])],
        version=doc.get("version", 0),
    )


def search_filter(owner_id: str, search: str | None) -> dict[str, Any]:
    """The caller's projects, optionally those whose name or description contains `search`."""
    query: dict[str, Any] = {"owner_id": owner_id}
    if search:
        # Escaped: user text is matched literally, never as a pattern or an operator.
        pattern = {"$regex": re.escape(search), "$options": "i"}
        query["$or"] = [{"name": pattern}, {"description": pattern}]
    return query


class ProjectRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[COLLECTION]

    def _key(self, owner_id: str, project_id: str) -> dict[str, Any] | None:
        oid = object_id(project_id)
        return {"_id": oid, "owner_id": owner_id} if oid else None

    async def create(
        self,
        owner_id: str,
        name: str,
        description: str,
        files: list[ProjectFile],
        session: AsyncClientSession | None = None,
    ) -> Project:
        now = utcnow()
        doc: dict[str, Any] = {
            "owner_id": owner_id,
            "name": name,
            "description": description,
            "github_repo_url": None,
            "vercel_url": None,
            "files": [file.model_dump() for file in files],
            "file_count": len(files),
            "total_size": sum(file.size for file in files),
            "version": 1,
            "message_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        await insert_new(self.collection, doc, session)
        return _project(doc)

    async def count_by_owner(self, owner_ids: list[str]) -> dict[str, int]:
        """Projects per owner for a page of users: one aggregation on `owner_updated`."""
        return await count_by(self.collection, "owner_id", {"owner_id": {"$in": owner_ids}})

    async def count_all(self) -> int:
        return await self.collection.estimated_document_count()

    async def page(
        self, owner_id: str, *, page: int, limit: int, sort: str, search: str | None
    ) -> tuple[list[ProjectSummary], int]:
        """One page of summaries (file contents are never loaded) and the total count."""
        docs, total = await page_of(
            self.collection,
            search_filter(owner_id, search),
            SORTS[sort],
            page=page,
            limit=limit,
            projection=_SUMMARY,
        )
        return [_summary(doc) for doc in docs], total

    async def get(
        self, owner_id: str, project_id: str, session: AsyncClientSession | None = None
    ) -> Project | None:
        key = self._key(owner_id, project_id)
        doc = await self.collection.find_one(key, session=session) if key else None
        return _project(doc) if doc else None

    async def replace_files(
        self,
        owner_id: str,
        project_id: str,
        version: int,
        files: list[ProjectFile],
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Write the whole file list at once, if the project is still at `version`."""
        key = self._key(owner_id, project_id)
        if key is None:
            return False
        result = await self.collection.update_one(
            {**key, "version": version},
            {
                "$set": {
                    "files": [file.model_dump() for file in files],
                    "file_count": len(files),
                    "total_size": sum(file.size for file in files),
                    "updated_at": utcnow(),
                },
                "$inc": {"version": 1},
            },
            session=session,
        )
        return result.modified_count == 1

    async def exists(self, owner_id: str, project_id: str) -> bool:
        key = self._key(owner_id, project_id)
        return key is not None and await self.collection.find_one(key, {"_id": 1}) is not None

    async def update(
        self, owner_id: str, project_id: str, fields: dict[str, Any]
    ) -> Project | None:
        key = self._key(owner_id, project_id)
        if key is None:
            return None
        doc = await self.collection.find_one_and_update(
            key,
            {"$set": {**fields, "updated_at": utcnow()}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return _project(doc) if doc else None

    async def delete(
        self, owner_id: str, project_id: str, session: AsyncClientSession | None = None
    ) -> bool:
        key = self._key(owner_id, project_id)
        if key is None:
            return False
        return (await self.collection.delete_one(key, session=session)).deleted_count == 1

    async def take_message_slots(
        self,
        owner_id: str,
        project_id: str,
        count: int,
        cap: int,
        session: AsyncClientSession | None = None,
    ) -> bool | None:
        """Count `count` more messages if the conversation stays within `cap`; None when the
        project does not exist. `message_count` changes in the transaction of the insert."""
        key = self._key(owner_id, project_id)
        if key is None:
            return None
        result = await self.collection.update_one(
            # A missing `message_count` counts as 0 (not every project has the field).
            {
                **key,
                "$or": [
                    {"message_count": {"$lte": cap - count}},
                    {"message_count": {"$exists": False}},
                ],
            },
            {"$inc": {"message_count": count}},
            session=session,
        )
        if result.modified_count == 1:
            return True
        return False if await self.collection.find_one(key, {"_id": 1}, session=session) else None

    async def _file_size(self, key: dict[str, Any], path: str) -> tuple[bool, int | None]:
        """(project exists, size of the file at `path` or None)."""
        doc = await self.collection.find_one(
            key, {"files": {"$elemMatch": {"path": path}}, "file_count": 1}
        )
        if doc is None:
            return False, None
        files = doc.get("files") or []
        return True, (files[0]["size"] if files else None)

    async def put_file(
        self, owner_id: str, project_id: str, file: ProjectFile, limits: Limits
    ) -> WriteResult:
        """Create or replace the file at `file.path`, within the caps."""
        key = self._key(owner_id, project_id)
        if key is None:
            return WriteResult.MISSING
        now = file.updated_at
        for _ in range(_CAS_ATTEMPTS):
            exists, old_size = await self._file_size(key, file.path)
            if not exists:
                return WriteResult.MISSING
            if old_size is None:
                result = await self.collection.update_one(
                    {
                        **key,
                        "files.path": {"$ne": file.path},
                        "file_count": {"$lt": limits.max_files},
                        "total_size": {"$lte": limits.max_total_bytes - file.size},
                    },
                    {
                        "$push": {"files": file.model_dump()},
                        "$inc": {"file_count": 1, "total_size": file.size, "version": 1},
                        "$set": {"updated_at": now},
                    },
                )
            else:
                result = await self.collection.update_one(
                    {
                        **key,
                        "files": {"$elemMatch": {"path": file.path, "size": old_size}},
                        "total_size": {"$lte": limits.max_total_bytes - file.size + old_size},
                    },
                    {
                        "$set": {
                            "files.$.content": file.content,
                            "files.$.language": file.language,
                            "files.$.size": file.size,
                            "files.$.updated_at": now,
                            "updated_at": now,
                        },
                        "$inc": {"total_size": file.size - old_size, "version": 1},
                    },
                )
            if result.modified_count == 1:
                return WriteResult.DONE
            refusal = await self._refusal(key, file, limits, old_size)
            if refusal is not None:
                return refusal
        raise RuntimeError(f"file write kept losing races after {_CAS_ATTEMPTS} attempts")

    async def _refusal(
        self, key: dict[str, Any], file: ProjectFile, limits: Limits, old_size: int | None
    ) -> WriteResult | None:
        """Why a conditional write matched nothing; None when it lost a race (try again)."""
        doc = await self.collection.find_one(
            key,
            {"files": {"$elemMatch": {"path": file.path}}, "file_count": 1, "total_size": 1},
        )
        if doc is None:
            return WriteResult.MISSING
        current = (doc.get("files") or [{}])[0].get("size")
        if current != old_size:
            return None  # someone else wrote this path meanwhile
        if current is None and doc["file_count"] >= limits.max_files:
            return WriteResult.TOO_MANY_FILES
        if doc["total_size"] - (current or 0) + file.size > limits.max_total_bytes:
            return WriteResult.TOO_LARGE
        return None

    async def delete_file(self, owner_id: str, project_id: str, path: str) -> WriteResult:
        key = self._key(owner_id, project_id)
        if key is None:
            return WriteResult.MISSING
        for _ in range(_CAS_ATTEMPTS):
            exists, size = await self._file_size(key, path)
            if not exists or size is None:
                return WriteResult.MISSING
            result = await self.collection.update_one(
                {**key, "files": {"$elemMatch": {"path": path, "size": size}}},
                {
                    "$pull": {"files": {"path": path}},
                    "$inc": {"file_count": -1, "total_size": -size, "version": 1},
                    "$set": {"updated_at": utcnow()},
                },
            )
            if result.modified_count == 1:
                return WriteResult.DONE
        raise RuntimeError(f"file delete kept losing races after {_CAS_ATTEMPTS} attempts")
