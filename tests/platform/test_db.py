"""The MongoDB wrapper: embedded mode, idempotent index creation."""

from collections.abc import Callable

import pytest
import structlog
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from backend.config import Settings
from backend.db import Mongo


async def test_embedded_mode_is_announced_once(make_settings: Callable[..., Settings]) -> None:
    with structlog.testing.capture_logs() as logs:
        mongo = Mongo(make_settings())
    assert mongo.is_embedded
    assert [entry["event"] for entry in logs] == ["mongodb_embedded"]
    assert logs[0]["log_level"] == "warning"


async def test_index_creation_is_idempotent_and_enforced(
    make_settings: Callable[..., Settings],
) -> None:
    mongo = Mongo(make_settings())
    indexes = {"things": [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]}
    await mongo.ensure_indexes(indexes)
    await mongo.ensure_indexes(indexes)
    await mongo.db["things"].insert_one({"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await mongo.db["things"].insert_one({"email": "a@example.com"})
