"""`auth_users`: accounts, found by id or email; ids are strings above this module."""

from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from app.errors import Conflict
from app.models.auth_user import COLLECTION


@dataclass(frozen=True)
class StoredAccount:
    id: str
    email: str
    password_hash: str


class AuthUserRepository:
    def __init__(self, db: Database) -> None:
        self.collection = db[COLLECTION]

    def get(self, user_id: str) -> StoredAccount | None:
        """The account with this id, or None (also for an id that cannot be one)."""
        try:
            oid = ObjectId(user_id)
        except (InvalidId, TypeError):
            return None
        return _read(self.collection.find_one({"_id": oid}))

    def find_by_email(self, email: str) -> StoredAccount | None:
        return _read(self.collection.find_one({"email": email}))

    def create(self, email: str, password_hash: str) -> StoredAccount:
        """A new account; `Conflict` when the email is taken (the unique index decides)."""
        doc: dict[str, Any] = {"email": email, "password_hash": password_hash}
        try:
            doc["_id"] = self.collection.insert_one(doc).inserted_id
        except DuplicateKeyError:
            raise Conflict("This email is registered already") from None
        return StoredAccount(str(doc["_id"]), email, password_hash)


def _read(doc: dict[str, Any] | None) -> StoredAccount | None:
    if doc is None:
        return None
    return StoredAccount(str(doc["_id"]), doc["email"], doc["password_hash"])
