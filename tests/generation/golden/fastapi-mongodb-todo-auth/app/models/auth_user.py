"""The `auth_users` collection: accounts that may write."""

from pymongo import ASCENDING, IndexModel

COLLECTION = "auth_users"
INDEXES = [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]
