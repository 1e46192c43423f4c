"""What every repository shares: id conversion and the current time."""

from datetime import UTC, datetime

from bson import ObjectId
from bson.errors import InvalidId


def object_id(value: str) -> ObjectId | None:
    """The ObjectId for a 24-hex id string; None for anything else (which reads as 404)."""
    if len(value) != 24:
        return None
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


def utcnow() -> datetime:
    # MongoDB keeps milliseconds; trimming here makes stored and returned times equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
