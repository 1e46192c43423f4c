"""One module per collection; the only code that speaks MongoDB.

`INDEXES` maps each collection to the indexes its repository declares; `backend.db`
creates them at start-up.
"""

from pymongo import IndexModel

INDEXES: dict[str, list[IndexModel]] = {}
