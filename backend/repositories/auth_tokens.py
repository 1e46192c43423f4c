"""Server-side credentials: refresh tokens, one-time action tokens, OAuth states and identities.

Every secret is stored as its SHA-256 digest. Single use is an atomic conditional update
(or delete), so two concurrent uses of one token can never both succeed.
"""

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from backend.errors import Conflict
from backend.repositories.base import insert_new, utcnow

REFRESH_TOKENS = "refresh_tokens"
ACTION_TOKENS = "action_tokens"
OAUTH_STATES = "oauth_states"
OAUTH_IDENTITIES = "oauth_identities"

_EXPIRE = IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl")
INDEXES = {
    REFRESH_TOKENS: [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
        IndexModel([("family_id", ASCENDING)], name="family_id"),
        IndexModel([("user_id", ASCENDING)], name="user_id"),
        _EXPIRE,
    ],
    ACTION_TOKENS: [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
        IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose"),
        _EXPIRE,
    ],
    OAUTH_STATES: [_EXPIRE],
    OAUTH_IDENTITIES: [
        IndexModel(
            [("provider", ASCENDING), ("subject", ASCENDING)], unique=True, name="identity_unique"
        ),
        IndexModel([("user_id", ASCENDING)], name="user_id"),
    ],
}

Purpose = Literal["verify_email", "reset_password"]


class RefreshToken(BaseModel):
    user_id: str
    family_id: str
    # The user's token version when it was issued; once the version moves on (a password
    # change, a reset, a disable) the token is worthless, even one issued during the change.
    token_version: int = 0
    used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime


class OAuthState(BaseModel):
    provider: str
    redirect_uri: str
    code_verifier: str
    nonce: str


class RefreshTokenRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[REFRESH_TOKENS]

    async def create(
        self, token_hash: str, user_id: str, family_id: str, token_version: int, ttl: timedelta
    ) -> None:
        now = utcnow()
        await insert_new(
            self.collection,
            {
                "token_hash": token_hash,
                "user_id": user_id,
                "family_id": family_id,
                "token_version": token_version,
                "created_at": now,
                "expires_at": now + ttl,
                "used_at": None,
                "revoked_at": None,
            },
        )

    async def spend(self, token_hash: str) -> RefreshToken | None:
        """Mark a live token used and return it; None when it is unknown, spent or revoked."""
        now = utcnow()
        doc = await self.collection.find_one_and_update(
            {
                "token_hash": token_hash,
                "used_at": None,
                "revoked_at": None,
                "expires_at": {"$gt": now},
            },
            {"$set": {"used_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return RefreshToken.model_validate(doc) if doc else None

    async def find(self, token_hash: str) -> RefreshToken | None:
        doc = await self.collection.find_one({"token_hash": token_hash})
        return RefreshToken.model_validate(doc) if doc else None

    async def revoke_family(self, family_id: str) -> None:
        await self.collection.update_many(
            {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": utcnow()}}
        )

    async def revoke_user(self, user_id: str) -> None:
        await self.collection.update_many(
            {"user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": utcnow()}}
        )


class ActionTokenRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[ACTION_TOKENS]

    async def create(self, token_hash: str, user_id: str, purpose: Purpose, ttl: timedelta) -> None:
        now = utcnow()
        await insert_new(
            self.collection,
            {
                "token_hash": token_hash,
                "user_id": user_id,
                "purpose": purpose,
                "created_at": now,
                "expires_at": now + ttl,
                "used_at": None,
            },
        )

    async def consume(self, token_hash: str, purpose: Purpose) -> str | None:
        """Use a live token once; its user id, or None."""
        now = utcnow()
        doc = await self.collection.find_one_and_update(
            {
                "token_hash": token_hash,
                "purpose": purpose,
                "used_at": None,
                "expires_at": {"$gt": now},
            },
            {"$set": {"used_at": now}},
        )
        return str(doc["user_id"]) if doc else None

    async def expire_all(self, user_id: str, purpose: Purpose) -> None:
        """Spend every outstanding token of this purpose (a password change voids resets)."""
        await self.collection.update_many(
            {"user_id": user_id, "purpose": purpose, "used_at": None},
            {"$set": {"used_at": utcnow()}},
        )


class OAuthStateRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[OAUTH_STATES]

    async def create(self, state_hash: str, state: OAuthState, ttl: timedelta) -> None:
        await insert_new(
            self.collection, {"_id": state_hash, **state.model_dump(), "expires_at": utcnow() + ttl}
        )

    async def take(self, state_hash: str) -> OAuthState | None:
        """Remove and return a live state: a state works once."""
        doc = await self.collection.find_one_and_delete(
            {"_id": state_hash, "expires_at": {"$gt": utcnow()}}
        )
        return OAuthState.model_validate(doc) if doc else None


class OAuthIdentityRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[OAUTH_IDENTITIES]

    async def user_id_for(self, provider: str, subject: str) -> str | None:
        doc = await self.collection.find_one({"provider": provider, "subject": subject})
        return str(doc["user_id"]) if doc else None

    async def link(
        self, provider: str, subject: str, user_id: str, *, email_verified: bool
    ) -> None:
        """Map an identity to a user; the unique index keeps one user per identity.

        `email_verified`: whether the provider vouched for the email it gave; a link without
        that proof is dropped when someone proves the mailbox (a password reset)."""
        try:
            await insert_new(
                self.collection,
                {
                    "provider": provider,
                    "subject": subject,
                    "user_id": user_id,
                    "email_verified": email_verified,
                    "created_at": utcnow(),
                },
            )
        except DuplicateKeyError:
            raise Conflict("This identity is linked to another account") from None

    async def unlink(self, user_id: str, *, unverified_only: bool) -> list[str]:
        """Remove the user's links (or only those without a verified email); the providers
        still linked afterwards."""
        query: dict[str, Any] = {"user_id": user_id}
        if unverified_only:
            query["email_verified"] = {"$ne": True}  # a link without the flag is unverified
        await self.collection.delete_many(query)
        remaining = self.collection.find({"user_id": user_id}, {"provider": 1})
        return sorted({doc["provider"] async for doc in remaining})
