"""One module per collection; the only code that speaks MongoDB.

`INDEXES` maps each collection to the indexes its repository declares; `backend.db`
creates them, and those of `backend.generation.repository`, at start-up.
"""

from pymongo import IndexModel

from backend.repositories import (
    audit,
    auth_tokens,
    generation_usage,
    messages,
    projects,
    stripe_events,
    users,
)

INDEXES: dict[str, list[IndexModel]] = {
    users.COLLECTION: users.INDEXES,
    projects.COLLECTION: projects.INDEXES,
    messages.COLLECTION: messages.INDEXES,
    stripe_events.COLLECTION: stripe_events.INDEXES,
    **auth_tokens.INDEXES,
    **generation_usage.INDEXES,
    audit.COLLECTION: audit.INDEXES,
}
