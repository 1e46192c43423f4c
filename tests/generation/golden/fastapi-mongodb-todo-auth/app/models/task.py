"""The `tasks` collection."""

from pymongo import ASCENDING, DESCENDING, IndexModel

COLLECTION = "tasks"
# Lists read an owner's live documents newest first.
INDEXES: list[IndexModel] = [
    IndexModel(
        [("owner_id", ASCENDING), ("deleted_at", ASCENDING), ("_id", DESCENDING)],
        name="owner_live_newest",
    ),
]
