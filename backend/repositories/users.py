"""The `users` collection."""

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backend.errors import EmailTaken
from backend.repositories.base import count_by_day, insert_new, object_id, page_of, utcnow

COLLECTION = "users"
INDEXES = [
    IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    IndexModel([("created_at", DESCENDING)], name="created_at"),
    # Sparse: the field is absent (never null) until the first checkout creates a customer.
    IndexModel([("stripe_customer_id", ASCENDING)], unique=True, sparse=True, name="customer"),
]

Role = Literal["user", "admin"]
Plan = Literal["free", "pro", "team"]
SubscriptionStatus = Literal["inactive", "trialing", "active", "past_due", "canceled"]


class StoredSubscription(BaseModel):
    """Our copy of the Stripe subscription, as of the newest event applied."""

    id: str
    stripe_status: str
    price_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    # `created` of the event this state came from; an older event never overwrites it.
    event_created: int


class User(BaseModel):
    """A user as the services see it; the password hash never leaves the repository."""

    id: str
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    is_verified: bool
    plan: Plan
    subscription_status: SubscriptionStatus
    oauth_providers: list[str]
    created_at: datetime
    # Part of every access token; raising it refuses all tokens issued before.
    token_version: int
    stripe_customer_id: str | None = None
    subscription: StoredSubscription | None = None


def _to_user(doc: dict[str, Any]) -> User:
    return User(
        id=str(doc["_id"]),
        email=doc["email"],
        full_name=doc.get("full_name"),
        role=doc.get("role", "user"),
        is_active=doc.get("is_active", True),
        is_verified=doc.get("is_verified", False),
        plan=doc.get("plan", "free"),
        subscription_status=doc.get("subscription_status", "inactive"),
        oauth_providers=doc.get("oauth_providers", []),
        created_at=doc["created_at"],
        token_version=doc.get("token_version", 0),
        stripe_customer_id=doc.get("stripe_customer_id"),
        subscription=doc.get("subscription"),
    )


class UserRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[COLLECTION]

    async def create(
        self,
        *,
        email: str,
        password_hash: str | None,
        full_name: str | None,
        is_verified: bool = False,
        role: Role = "user",
        oauth_provider: str | None = None,
    ) -> User:
        """Insert a user; the unique email index turns a race into `email_taken`."""
        now = utcnow()
        doc: dict[str, Any] = {
            "email": email,
            "password_hash": password_hash,
            "full_name": full_name,
            "role": role,
            "is_active": True,
            "is_verified": is_verified,
            "plan": "free",
            "subscription_status": "inactive",
            "oauth_providers": [oauth_provider] if oauth_provider else [],
            "created_at": now,
            "updated_at": now,
            "token_version": 0,
            "project_count": 0,
        }
        try:
            await insert_new(self.collection, doc)
        except DuplicateKeyError:
            raise EmailTaken() from None
        return _to_user(doc)

    async def get(self, user_id: str) -> User | None:
        oid = object_id(user_id)
        if oid is None:
            return None
        doc = await self.collection.find_one({"_id": oid}, {"password_hash": 0})
        return _to_user(doc) if doc else None

    async def get_by_email(self, email: str) -> User | None:
        doc = await self.collection.find_one({"email": email}, {"password_hash": 0})
        return _to_user(doc) if doc else None

    async def get_credentials(self, email: str) -> tuple[User, str | None] | None:
        """The user and their password hash (None for OAuth-only accounts)."""
        doc = await self.collection.find_one({"email": email})
        return (_to_user(doc), doc.get("password_hash")) if doc else None

    async def get_password_hash(self, user_id: str) -> str | None:
        oid = object_id(user_id)
        doc = await self.collection.find_one({"_id": oid}, {"password_hash": 1}) if oid else None
        return doc.get("password_hash") if doc else None

    async def update(
        self, user_id: str, fields: dict[str, Any], session: AsyncClientSession | None = None
    ) -> User | None:
        """Set fields atomically and return the user as it is now."""
        oid = object_id(user_id)
        if oid is None:
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": oid},
            {"$set": {**fields, "updated_at": utcnow()}},
            projection={"password_hash": 0},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return _to_user(doc) if doc else None

    async def admin_page(
        self,
        *,
        search: str | None,
        role: str | None,
        plan: str | None,
        is_active: bool | None,
        page: int,
        limit: int,
    ) -> tuple[list[User], int]:
        """Users newest first, filtered; `search` is plain text in email or name."""
        query: dict[str, Any] = {}
        if search:
            pattern = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"email": pattern}, {"full_name": pattern}]
        for field, value in (("role", role), ("plan", plan), ("is_active", is_active)):
            if value is not None:
                query[field] = value
        docs, total = await page_of(
            self.collection,
            query,
            [("created_at", DESCENDING), ("_id", DESCENDING)],
            page=page,
            limit=limit,
            projection={"password_hash": 0},
        )
        return [_to_user(doc) for doc in docs], total

    async def end_sessions(self, user_id: str) -> None:
        """Every access token issued until now stops working (their `ver` is old)."""
        oid = object_id(user_id)
        if oid is not None:
            await self.collection.update_one({"_id": oid}, {"$inc": {"token_version": 1}})

    async def hold_if_active(self, user_id: str, session: AsyncClientSession | None) -> bool:
        """Whether the account is active, read after writing to it in `session`: a disable
        committed meanwhile then conflicts with the transaction instead of passing unseen."""
        oid = object_id(user_id)
        await self.collection.update_one(
            {"_id": oid}, {"$set": {"held_at": utcnow()}}, session=session
        )
        doc = await self.collection.find_one({"_id": oid}, {"is_active": 1}, session=session)
        return doc is not None and bool(doc.get("is_active", True))

    async def totals(self) -> dict[str, Any]:
        """Counts for the admin dashboard: one pass over the collection."""
        key = {
            "plan": "$plan",
            "active": "$is_active",
            "verified": "$is_verified",
            "subscription": "$subscription_status",
        }
        pipeline = [{"$group": {"_id": key, "count": {"$sum": 1}}}]
        groups = await (await self.collection.aggregate(pipeline)).to_list(None)
        return {"groups": groups}

    async def created_by_day(self, since: datetime) -> dict[str, int]:
        return await count_by_day(self.collection, {"created_at": {"$gte": since}})

    async def set_password(self, user_id: str, password_hash: str) -> None:
        """Store a new hash of the same password (a scheme upgrade): sessions go on."""
        oid = object_id(user_id)
        if oid is not None:
            await self.collection.update_one(
                {"_id": oid}, {"$set": {"password_hash": password_hash, "updated_at": utcnow()}}
            )

    async def replace_credentials(
        self, user_id: str, password_hash: str | None, fields: dict[str, Any]
    ) -> User | None:
        """Set (or remove) the password and `fields`, and end every session, in one update."""
        oid = object_id(user_id)
        if oid is None:
            return None
        doc = await self.collection.find_one_and_update(
            {"_id": oid},
            {
                "$set": {**fields, "password_hash": password_hash, "updated_at": utcnow()},
                "$inc": {"token_version": 1},
            },
            projection={"password_hash": 0},
            return_document=ReturnDocument.AFTER,
        )
        return _to_user(doc) if doc else None

    async def add_oauth_provider(
        self, user_id: str, provider: str, *, verified: bool
    ) -> User | None:
        oid = object_id(user_id)
        if oid is None:
            return None
        update: dict[str, Any] = {"$addToSet": {"oauth_providers": provider}}
        if verified:
            update["$set"] = {"is_verified": True, "updated_at": utcnow()}
        doc = await self.collection.find_one_and_update(
            {"_id": oid},
            update,
            projection={"password_hash": 0},
            return_document=ReturnDocument.AFTER,
        )
        return _to_user(doc) if doc else None

    async def take_project_slot(
        self, user_id: str, cap: int, session: AsyncClientSession | None = None
    ) -> bool:
        """Count one more project if the user owns fewer than `cap` (`project_count`, kept in
        the transaction that inserts or deletes the project)."""
        oid = object_id(user_id)
        result = await self.collection.update_one(
            # A missing `project_count` counts as 0 (not every account has the field).
            {
                "_id": oid,
                "$or": [{"project_count": {"$lt": cap}}, {"project_count": {"$exists": False}}],
            },
            {"$inc": {"project_count": 1}},
            session=session,
        )
        return result.modified_count == 1

    async def free_project_slot(
        self, user_id: str, session: AsyncClientSession | None = None
    ) -> None:
        await self.collection.update_one(
            {"_id": object_id(user_id), "project_count": {"$gt": 0}},
            {"$inc": {"project_count": -1}},
            session=session,
        )

    async def get_by_customer(self, customer_id: str) -> User | None:
        doc = await self.collection.find_one(
            {"stripe_customer_id": customer_id}, {"password_hash": 0}
        )
        return _to_user(doc) if doc else None

    async def set_customer(self, user_id: str, customer_id: str) -> str:
        """Store the Stripe customer unless one is stored already; the one that is stored."""
        oid = object_id(user_id)
        assert oid is not None
        doc = await self.collection.find_one_and_update(
            {"_id": oid, "stripe_customer_id": {"$exists": False}},
            {"$set": {"stripe_customer_id": customer_id, "updated_at": utcnow()}},
            projection={"stripe_customer_id": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            doc = await self.collection.find_one({"_id": oid}, {"stripe_customer_id": 1})
        assert doc is not None
        return str(doc["stripe_customer_id"])

    async def apply_subscription(
        self,
        user_id: str,
        fields: dict[str, Any],
        subscription: StoredSubscription,
        *,
        newer_only: bool,
    ) -> bool:
        """Store subscription state; with `newer_only`, only over state from an older event."""
        oid = object_id(user_id)
        if oid is None:
            return False
        query: dict[str, Any] = {"_id": oid}
        if newer_only:
            query["$or"] = [
                {"subscription": None},
                {"subscription.event_created": {"$lt": subscription.event_created}},
            ]
        result = await self.collection.update_one(
            query,
            {
                "$set": {
                    **fields,
                    "subscription": subscription.model_dump(),
                    "updated_at": utcnow(),
                }
            },
        )
        return result.matched_count == 1
