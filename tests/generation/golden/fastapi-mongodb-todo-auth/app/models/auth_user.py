"""The `auth_users` collection: accounts; each owns the records it creates."""

from pymongo import ASCENDING, IndexModel

COLLECTION = "auth_users"
INDEXES = [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]
