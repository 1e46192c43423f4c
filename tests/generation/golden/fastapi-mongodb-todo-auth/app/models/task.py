"""The `tasks` collection."""

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTION = "tasks"
INDEXES = [
    IndexModel([("deleted_at", ASCENDING), ("_id", DESCENDING)], name="live_newest"),
]
