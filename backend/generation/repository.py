"""`generation_jobs`, `job_events` and `job_changes`: a job, what it said, what it changed.

The job document is the source of truth for status. Every event takes the next number of its
job's `event_seq` (an atomic `$inc` on the job) and is stored append-only under the unique
`(job_id, seq)`; that number is the SSE `id`. A terminal transition and its terminal event
are written in one transaction by the service, so a job is terminal exactly when its stream
has ended. Filters always carry `owner_id`: every read is scoped to the caller.
"""

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from backend.generation.models import ACTIVE, Change, Event, Job
from backend.repositories.base import (
    Session,
    count_by,
    count_by_day,
    insert_new,
    object_id,
    page_of,
    utcnow,
)

JOBS = "generation_jobs"
EVENTS = "job_events"
CHANGES = "job_changes"

INDEXES = {
    JOBS: [
        IndexModel([("owner_id", ASCENDING), ("created_at", DESCENDING)], name="owner_created"),
        IndexModel(
            [("owner_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)],
            name="owner_status_created",
        ),
        # Admin views across users, newest first.
        IndexModel([("created_at", DESCENDING)], name="created_at"),
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_created"),
        IndexModel([("kind", ASCENDING), ("created_at", DESCENDING)], name="kind_created"),
        # The reaper's queries: running jobs whose heartbeat went stale; queued jobs whose
        # message was sent long ago and never claimed.
        IndexModel([("status", ASCENDING), ("heartbeat_at", ASCENDING)], name="status_heartbeat"),
        IndexModel([("status", ASCENDING), ("sent_at", ASCENDING)], name="status_sent"),
    ],
    # Retention: a job's events and changes go `job_data_retention_days` after it ended.
    EVENTS: [
        IndexModel([("job_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="job_seq"),
        IndexModel([("expire_at", ASCENDING)], expireAfterSeconds=0, name="expire_at_ttl"),
    ],
    CHANGES: [
        IndexModel([("job_id", ASCENDING), ("path", ASCENDING)], unique=True, name="job_path"),
        IndexModel([("expire_at", ASCENDING)], expireAfterSeconds=0, name="expire_at_ttl"),
    ],
}


def _job(doc: dict[str, Any]) -> Job:
    return Job(id=str(doc["_id"]), **{k: v for k, v in doc.items() if k in Job.model_fields})


class JobRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.jobs = db[JOBS]
        self.events = db[EVENTS]
        self.changes = db[CHANGES]

    def _key(self, owner_id: str, job_id: str) -> dict[str, Any] | None:
        oid = object_id(job_id)
        return {"_id": oid, "owner_id": owner_id} if oid else None

    async def create(
        self,
        *,
        owner_id: str,
        kind: str,
        project_id: str | None,
        model: str | None,
        request: dict[str, Any],
        period: str,
        project_slot: bool = False,
        session: Session = None,
    ) -> Job:
        now = utcnow()
        doc: dict[str, Any] = {
            "_id": ObjectId(),
            "owner_id": owner_id,
            "kind": kind,
            "status": "queued",
            "progress": 0,
            "stage": "queued",
            "project_id": project_id,
            "model": model,
            "request": request,
            "result": None,
            "error": None,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "attempts": 0,
            "runner_id": None,
            "heartbeat_at": None,
            "cancel_requested": False,
            "period": period,
            "project_slot": project_slot,
            "event_seq": 0,
            "sent_at": now,  # the message goes right after the admission commits
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "reverted_at": None,
        }
        await insert_new(self.jobs, doc, session)
        return _job(doc)

    async def get(self, owner_id: str, job_id: str, session: Session = None) -> Job | None:
        key = self._key(owner_id, job_id)
        doc = await self.jobs.find_one(key, session=session) if key else None
        return _job(doc) if doc else None

    async def page(
        self,
        owner_id: str,
        *,
        page: int,
        limit: int,
        status: str | None,
        project_id: str | None,
    ) -> tuple[list[Job], int]:
        """Newest first; `owner_status_created` or `owner_created` serves every filter."""
        query: dict[str, Any] = {"owner_id": owner_id}
        if status:
            query["status"] = status
        if project_id:
            query["project_id"] = project_id
        return await self._newest(query, page, limit)

    async def _newest(self, query: dict[str, Any], page: int, limit: int) -> tuple[list[Job], int]:
        """One page of the jobs matching `query`, newest first, and their count."""
        newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
        docs, total = await page_of(self.jobs, query, newest, page=page, limit=limit)
        return [_job(doc) for doc in docs], total

    async def delete(self, owner_id: str, job_id: str, session: Session = None) -> None:
        await self.jobs.delete_one({"_id": ObjectId(job_id), "owner_id": owner_id}, session=session)

    async def claim(self, owner_id: str, job_id: str, runner_id: str) -> Job | None:
        """Take a queued job for running; None if it is not queued (taken, finished, gone)."""
        now = utcnow()
        doc = await self.jobs.find_one_and_update(
            {"_id": ObjectId(job_id), "owner_id": owner_id, "status": "queued"},
            {
                "$set": {
                    "status": "running",
                    "runner_id": runner_id,
                    "heartbeat_at": now,
                    "started_at": now,
                    "stage": "starting",
                },
                "$inc": {"attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return _job(doc) if doc else None

    async def heartbeat(self, owner_id: str, job_id: str, runner_id: str) -> bool | None:
        """Refresh the heartbeat; the cancel flag, or None if this runner no longer holds it."""
        doc = await self.jobs.find_one_and_update(
            {
                "_id": ObjectId(job_id),
                "owner_id": owner_id,
                "runner_id": runner_id,
                "status": "running",
            },
            {"$set": {"heartbeat_at": utcnow()}},
            projection={"cancel_requested": 1},
        )
        return bool(doc["cancel_requested"]) if doc else None

    async def request_cancel(self, owner_id: str, job_id: str) -> Job | None:
        doc = await self.jobs.find_one_and_update(
            {"_id": ObjectId(job_id), "owner_id": owner_id, "status": "running"},
            {"$set": {"cancel_requested": True}},
            return_document=ReturnDocument.AFTER,
        )
        return _job(doc) if doc else None

    async def stale(self, before: datetime, limit: int = 100) -> list[Job]:
        """Running jobs whose runner stopped beating (`status_heartbeat` index)."""
        cursor = self.jobs.find({"status": "running", "heartbeat_at": {"$lt": before}}).limit(limit)
        return [_job(doc) for doc in await cursor.to_list(length=limit)]

    async def last_succeeded(self, owner_id: str, project_id: str) -> Job | None:
        """The project's latest succeeded job (`owner_status_created`)."""
        doc = await self.jobs.find_one(
            {"owner_id": owner_id, "status": "succeeded", "project_id": project_id},
            sort=[("created_at", DESCENDING)],
        )
        return _job(doc) if doc else None

    async def hold(self, job: Job, tokens: int, period: str, session: Session) -> None:
        """What the job holds of its owner's month for the call it is about to make."""
        held = {"usage.held_tokens": tokens, "usage.held_period": period}
        await self.jobs.update_one(
            {"_id": ObjectId(job.id), "owner_id": job.owner_id}, {"$set": held}, session=session
        )

    async def settle(
        self,
        job: Job,
        prompt_tokens: int,
        completion_tokens: int,
        cost_nanos: int,
        session: Session,
    ) -> None:
        """A call's spend on the job; it holds nothing any more."""
        await self.jobs.update_one(
            {"_id": ObjectId(job.id), "owner_id": job.owner_id},
            {
                "$inc": {
                    "usage.prompt_tokens": prompt_tokens,
                    "usage.completion_tokens": completion_tokens,
                    "usage.cost_nanos": cost_nanos,
                },
                "$set": {"usage.held_tokens": 0},
            },
            session=session,
        )

    async def admin_page(
        self,
        *,
        page: int,
        limit: int,
        status: str | None,
        owner_id: str | None,
        kind: str | None,
    ) -> tuple[list[Job], int]:
        """Every user's jobs, newest first."""
        query: dict[str, Any] = {}
        for field, value in (("status", status), ("owner_id", owner_id), ("kind", kind)):
            if value:
                query[field] = value
        return await self._newest(query, page, limit)

    async def get_any(self, job_id: str) -> Job | None:
        """A job by id, whoever owns it (admin only)."""
        oid = object_id(job_id)
        doc = await self.jobs.find_one({"_id": oid}) if oid else None
        return _job(doc) if doc else None

    async def active_of(self, owner_id: str) -> list[Job]:
        cursor = self.jobs.find({"owner_id": owner_id, "status": {"$in": list(ACTIVE)}})
        return [_job(doc) async for doc in cursor]

    async def count_by_owner(self, owner_ids: list[str]) -> dict[str, int]:
        return await count_by(self.jobs, "owner_id", {"owner_id": {"$in": owner_ids}})

    async def count_by_status(self) -> dict[str, int]:
        return await count_by(self.jobs, "status")

    async def count_since(self, since: datetime) -> int:
        return await self.jobs.count_documents({"created_at": {"$gte": since}})

    async def created_by_day(self, since: datetime, status: str | None = None) -> dict[str, int]:
        match: dict[str, Any] = {"created_at": {"$gte": since}}
        if status:
            match = {"status": status, **match}
        return await count_by_day(self.jobs, match)

    async def spend_by_day(self, since: datetime) -> dict[str, tuple[int, int]]:
        """`YYYY-MM-DD` → (model tokens, cost in nanodollars) of the jobs created that day
        (`created_at` index)."""
        day = {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}}
        group = {
            "_id": day,
            "prompt": {"$sum": "$usage.prompt_tokens"},
            "completion": {"$sum": "$usage.completion_tokens"},
            "cost": {"$sum": "$usage.cost_nanos"},
        }
        pipeline: list[dict[str, Any]] = [
            {"$match": {"created_at": {"$gte": since}}},
            {"$group": group},
        ]
        rows = await (await self.jobs.aggregate(pipeline)).to_list(None)
        return {
            row["_id"]: (
                int(row["prompt"] or 0) + int(row["completion"] or 0),
                int(row["cost"] or 0),
            )
            for row in rows
        }

    async def queued(self, limit: int = 1000) -> list[Job]:
        """Jobs waiting for a runner (`status_heartbeat` index, by its prefix)."""
        cursor = self.jobs.find({"status": "queued"}).limit(limit)
        return [_job(doc) for doc in await cursor.to_list(length=limit)]

    async def mark_unsent(self, job: Job) -> None:
        """The job is queued here but its message never reached the queue (Redis was down)."""
        await self.jobs.update_one(
            {"_id": ObjectId(job.id), "status": "queued"}, {"$set": {"unsent": True}}
        )

    async def unsent(self, limit: int = 100) -> list[Job]:
        """Queued jobs whose message must be sent again (`status_heartbeat`, by its prefix)."""
        cursor = self.jobs.find({"status": "queued", "unsent": True}).limit(limit)
        return [_job(doc) for doc in await cursor.to_list(length=limit)]

    async def mark_sent(self, job: Job) -> None:
        await self.jobs.update_one(
            {"_id": ObjectId(job.id)}, {"$unset": {"unsent": ""}, "$set": {"sent_at": utcnow()}}
        )

    async def unclaimed(self, sent_before: datetime, limit: int = 100) -> list[Job]:
        """Queued jobs whose message was sent before `sent_before` (`status_sent` index)."""
        cursor = self.jobs.find({"status": "queued", "sent_at": {"$lt": sent_before}})
        return [_job(doc) for doc in await cursor.limit(limit).to_list(length=limit)]

    async def take_for_resending(self, job: Job) -> bool:
        """Whether this reaper sends the job's message again (one of several reapers does)."""
        result = await self.jobs.update_one(
            {"_id": ObjectId(job.id), "status": "queued", "sent_at": job.sent_at},
            {"$set": {"sent_at": utcnow()}},
        )
        return result.modified_count == 1

    async def count_queued(self) -> int:
        return await self.jobs.count_documents({"status": "queued"})

    async def requeue(self, job: Job, stage: str) -> bool:
        """Put a running job back in the queue, if the runner it had still holds it."""
        result = await self.jobs.update_one(
            {
                "_id": ObjectId(job.id),
                "owner_id": job.owner_id,
                "status": "running",
                "runner_id": job.runner_id,
            },
            {
                "$set": {
                    "status": "queued",
                    "runner_id": None,
                    "heartbeat_at": None,
                    "stage": stage,
                    "progress": 0,
                    "sent_at": utcnow(),
                }
            },
        )
        return result.modified_count == 1

    async def next_seq(
        self,
        owner_id: str,
        job_id: str,
        fields: dict[str, Any] | None = None,
        session: Session = None,
    ) -> tuple[int, bool]:
        """Take the job's next event number, setting `fields` on it in the same write; also
        says whether the owner asked to cancel (each step learns it at no extra cost)."""
        update: dict[str, Any] = {"$inc": {"event_seq": 1}}
        if fields:
            update["$set"] = fields
        doc = await self.jobs.find_one_and_update(
            {"_id": ObjectId(job_id), "owner_id": owner_id},
            update,
            projection={"event_seq": 1, "cancel_requested": 1},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if doc is None:
            raise LookupError(job_id)
        return int(doc["event_seq"]), bool(doc.get("cancel_requested"))

    async def finish(
        self, job: Job, fields: dict[str, Any], *, from_status: tuple[str, ...], session: Session
    ) -> int | None:
        """Move an active job to a terminal state; its next event number, or None if it was not
        in `from_status` any more (someone else finished it), or another runner holds it now
        (the reaper retried it elsewhere while this one was still finishing)."""
        doc = await self.jobs.find_one_and_update(
            {
                "_id": ObjectId(job.id),
                "owner_id": job.owner_id,
                "status": {"$in": list(from_status)},
                "runner_id": job.runner_id,
            },
            {
                "$set": {**fields, "finished_at": utcnow(), "runner_id": None},
                "$inc": {"event_seq": 1},
            },
            projection={"event_seq": 1},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return int(doc["event_seq"]) if doc else None

    async def set_fields(
        self, job: Job, fields: dict[str, Any], condition: dict[str, Any], session: Session = None
    ) -> bool:
        result = await self.jobs.update_one(
            {"_id": ObjectId(job.id), "owner_id": job.owner_id, **condition},
            {"$set": fields},
            session=session,
        )
        return result.modified_count == 1

    async def append_event(
        self, job_id: str, seq: int, kind: str, data: dict[str, Any], session: Session = None
    ) -> Event:
        await insert_new(
            self.events,
            {"job_id": job_id, "seq": seq, "type": kind, "data": data, "at": utcnow()},
            session,
        )
        return Event(seq=seq, type=kind, data=data)

    async def expire_data(self, job_id: str, at: datetime, session: Session) -> None:
        """The job's events and changes are deleted at `at` (the TTL indexes)."""
        for collection in (self.events, self.changes):
            await collection.update_many(
                {"job_id": job_id}, {"$set": {"expire_at": at}}, session=session
            )

    async def events_in(self, job_id: str, seqs: list[int], session: Session = None) -> list[Event]:
        cursor = self.events.find({"job_id": job_id, "seq": {"$in": seqs}}, session=session).sort(
            "seq", ASCENDING
        )
        return [Event(seq=d["seq"], type=d["type"], data=d["data"]) async for d in cursor]

    async def delete_events(self, job_id: str, seqs: list[int], session: Session = None) -> None:
        await self.events.delete_many({"job_id": job_id, "seq": {"$in": seqs}}, session=session)

    async def events_after(self, job_id: str, seq: int) -> list[Event]:
        cursor = self.events.find({"job_id": job_id, "seq": {"$gt": seq}}).sort("seq", ASCENDING)
        return [Event(seq=d["seq"], type=d["type"], data=d["data"]) async for d in cursor]

    async def stage_changes(self, job_id: str, changes: list[Change]) -> None:
        """Replace the job's staged changes (a retried job stages them again)."""
        await self.changes.delete_many({"job_id": job_id})
        if changes:
            await self.changes.insert_many(
                [{"job_id": job_id, **change.model_dump()} for change in changes]
            )

    async def staged_changes(self, job_id: str, session: Session = None) -> list[Change]:
        cursor = self.changes.find({"job_id": job_id}, session=session).sort("path", ASCENDING)
        return [Change.model_validate(doc) async for doc in cursor]

    async def record_applied(self, job_id: str, changes: list[Change], session: Session) -> None:
        """Keep what each change replaced, for the diff and the revert."""
        await self.changes.delete_many({"job_id": job_id}, session=session)
        if changes:
            await self.changes.insert_many(
                [{"job_id": job_id, **change.model_dump()} for change in changes], session=session
            )
