"""`generation_usage` (one document per user: this month's count, active jobs, tokens) and
`idempotency_keys` (a job request's key for 24 hours).

Admission is a conditional `$inc` — `used < quota` and `active < max` in the filter — inside
the transaction that also inserts the job, so concurrent requests can never over-admit and a
reservation never exists without its job.
"""

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from backend.repositories.base import Session, utcnow

USAGE = "generation_usage"
IDEMPOTENCY = "idempotency_keys"
KEY_TTL = timedelta(hours=24)

INDEXES = {
    USAGE: [],  # read and written by `_id` (the user id) only
    IDEMPOTENCY: [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl"),
    ],
}


class UsageCounters(BaseModel):
    period: str
    used: int
    active: int
    prompt_tokens: int
    completion_tokens: int
    cost_nanos: int = 0
    # The month's tokens as the budget counts them: spent, plus those held by calls in flight.
    budget_tokens: int = 0
    held_tokens: int = 0


MONTHLY_ZERO = {
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost_nanos": 0,
    "budget_tokens": 0,
    "held_tokens": 0,
}


class KeyRecord(BaseModel):
    job_id: str
    body_hash: str


class UsageRepository:
    def __init__(self, db: Any) -> None:
        self.usage = db[USAGE]
        self.keys = db[IDEMPOTENCY]

    async def start_period(self, user_id: str, period: str) -> None:
        """Make sure the user's document exists and counts `period` (a new month starts at 0;
        active jobs carry over). Writes only when it must: every admission and every job's end
        write this document in a transaction, and a plain write to it waits for as long as one
        holds it (a job's end holds it until its files commit, seconds on a busy database)."""
        current = await self.usage.find_one({"_id": user_id}, {"period": 1})
        if current is not None and current["period"] == period:
            return
        await self.usage.update_one(
            {"_id": user_id},
            {
                "$setOnInsert": {
                    "period": period,
                    "used": 0,
                    "active": 0,
                    **MONTHLY_ZERO,
                }
            },
            upsert=True,
        )
        await self.usage.update_one(
            {"_id": user_id, "period": {"$ne": period}},
            # Calls in flight when the month turns settle into the new one; what they hold
            # is not carried over (a hold is never more than one call's maximum).
            {"$set": {"period": period, "used": 0, **MONTHLY_ZERO}},
        )

    async def reserve(
        self, user_id: str, period: str, quota: int, max_active: int, session: Session
    ) -> bool:
        """Take one generation and one active slot, if both are free."""
        result = await self.usage.update_one(
            {
                "_id": user_id,
                "period": period,
                "used": {"$lt": quota},
                "active": {"$lt": max_active},
            },
            {"$inc": {"used": 1, "active": 1}},
            session=session,
        )
        return bool(result.modified_count == 1)

    async def get(self, user_id: str, session: Session = None) -> UsageCounters | None:
        doc = await self.usage.find_one({"_id": user_id}, session=session)
        return UsageCounters.model_validate(doc) if doc else None

    async def release(self, user_id: str, period: str, *, refund: bool, session: Session) -> None:
        """A job ended: free its slot, and with `refund` give its generation back (only
        within the month it was counted in)."""
        await self.usage.update_one({"_id": user_id}, {"$inc": {"active": -1}}, session=session)
        if refund:
            await self.usage.update_one(
                {"_id": user_id, "period": period}, {"$inc": {"used": -1}}, session=session
            )

    async def hold(
        self, user_id: str, period: str, tokens: int, budget: int, session: Session
    ) -> bool:
        """Hold `tokens` of the month's budget for one model call, if they fit."""
        result = await self.usage.update_one(
            {"_id": user_id, "period": period, "budget_tokens": {"$lte": budget - tokens}},
            {"$inc": {"budget_tokens": tokens, "held_tokens": tokens}},
            session=session,
        )
        return bool(result.modified_count == 1)

    async def settle(
        self,
        user_id: str,
        period: str,
        *,
        held: int,
        spent: tuple[int, int],
        cost_nanos: int,
        session: Session,
    ) -> None:
        """A call ended (or its job did, `spent` (0, 0)): its hold of `period` goes, and what
        it spent counts, in that month or, if the month turned meanwhile, in the new one."""
        tokens = {"prompt_tokens": spent[0], "completion_tokens": spent[1],
                  "cost_nanos": cost_nanos}  # fmt: skip
        inc = {"budget_tokens": sum(spent) - held, "held_tokens": -held, **tokens}
        result = await self.usage.update_one(
            {"_id": user_id, "period": period}, {"$inc": inc}, session=session
        )
        if result.modified_count == 0 and sum(spent):
            await self.usage.update_one(
                {"_id": user_id}, {"$inc": {"budget_tokens": sum(spent), **tokens}}, session=session
            )

    async def of_users(self, user_ids: list[str], period: str) -> dict[str, UsageCounters]:
        """This month's counters of each user that has any (by `_id`)."""
        cursor = self.usage.find({"_id": {"$in": user_ids}, "period": period})
        return {doc["_id"]: UsageCounters.model_validate(doc) async for doc in cursor}

    async def remember_key(
        self, key_id: str, job_id: str, body_hash: str, session: Session
    ) -> bool:
        """Store the key for this job; False if another request holds it (its transaction
        is then aborted by the server: the caller must not read in it)."""
        try:
            await self.keys.insert_one(
                {
                    "_id": key_id,
                    "job_id": job_id,
                    "body_hash": body_hash,
                    "expires_at": utcnow() + KEY_TTL,
                },
                session=session,
            )
        except DuplicateKeyError:
            return False
        return True

    async def find_key(
        self, key_id: str, now: datetime | None = None, session: Session = None
    ) -> KeyRecord | None:
        """The current record for a key (the TTL sweep runs once a minute, so check expiry)."""
        doc = await self.keys.find_one(
            {"_id": key_id, "expires_at": {"$gt": now or utcnow()}}, session=session
        )
        return KeyRecord.model_validate(doc) if doc else None

    async def forget_expired_key(self, key_id: str) -> None:
        await self.keys.delete_one({"_id": key_id, "expires_at": {"$lte": utcnow()}})

    async def forget_key(self, key_id: str, session: Session = None) -> None:
        await self.keys.delete_one({"_id": key_id}, session=session)
