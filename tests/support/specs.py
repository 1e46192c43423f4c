"""Generator specs the tests submit: a small one, the largest the contract allows, a rich one."""

from pathlib import Path
from typing import Any

from schemas.generation_schemas import FullstackCreate

SPEC: dict[str, Any] = {
    "project_name": "Shop",
    "description": "A small shop",
    "data_models": [
        {"name": "Product", "fields": [{"name": "title", "type": "string"},
                                       {"name": "price", "type": "float"}]},
    ],
    "features": ["pagination"],
    "framework": "fastapi",
    "database": "sqlite",
}  # fmt: skip
TYPES = ["string", "text", "integer", "float", "boolean", "date", "datetime", "email", "url",
         "uuid"]  # fmt: skip
ALL_FEATURES = ["auth", "pagination", "search", "timestamps", "soft_delete"]


def big_spec(models: int = 30, fields: int = 50) -> dict[str, Any]:
    """The largest spec the contract allows: a job that takes a while to stage."""
    types = ["string", "text", "integer", "float", "boolean", "date", "datetime", "email",
             "url", "uuid"]  # fmt: skip
    return {
        **SPEC,
        "data_models": [
            {"name": f"Thing{m}",
             "fields": [{"name": f"f{i}", "type": types[i % 10]} for i in range(fields)]}
            for m in range(models)
        ],
    }  # fmt: skip


def rich_spec(database: str, features: list[str]) -> FullstackCreate:
    """Every field type, optional fields, and the SQL-reserved names User, Order and Group."""
    return FullstackCreate.model_validate({
        "project_name": "Shop API",
        "description": "A shop with users, orders and groups.",
        "data_models": [
            {"name": "User", "fields": [{"name": f"{t}_value", "type": t} for t in TYPES]},
            {"name": "Order", "fields": [
                {"name": "total", "type": "float"},
                {"name": "note", "type": "text", "required": False},
                {"name": "placed", "type": "datetime", "required": False},
                {"name": "select", "type": "string", "required": False},
            ]},
            {"name": "Group", "fields": [{"name": "title", "type": "string"},
                                         {"name": "order", "type": "integer",
                                          "required": False}]},
            {"name": "OrderItem", "fields": [{"name": "quantity", "type": "integer"},
                                             {"name": "sku", "type": "uuid",
                                              "required": False}]},
        ],
        "features": features,
        "framework": "fastapi",
        "database": database,
    })  # fmt: skip


def write_project(files: dict[str, str], into: Path, *, keep: tuple[str, ...] = ()) -> Path:
    """Generated files written under `into`; a file under a `keep` folder that exists already
    stays as it is (a user regenerating keeps, say, their `migrations/versions/`)."""
    for path, content in files.items():
        target = into / path
        if target.exists() and path.startswith(keep):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return into
