"""Collections and their indexes."""

from pymongo import IndexModel

from app.models.auth_user import INDEXES as AUTH_USER_INDEXES
from app.models.task import INDEXES as TASK_INDEXES

INDEXES: dict[str, list[IndexModel]] = {
    "tasks": TASK_INDEXES,
    "auth_users": AUTH_USER_INDEXES,
}
