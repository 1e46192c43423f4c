"""Golden outputs of the full-stack generator for small specs, reviewed in diffs.

They live in `tests/generation/golden/`; `make golden` (`python -m tests.support.golden`)
writes them again after a template changes, and `tests/generation/test_golden.py` fails while
the committed files differ from what is generated.
"""

import shutil
from pathlib import Path
from typing import Any

from backend.generation.fullstack.generator import generate
from schemas.generation_schemas import FullstackCreate

GOLDEN = Path(__file__).parents[1] / "generation" / "golden"
_TODO: dict[str, Any] = {
    "project_name": "Todo",
    "description": "Tasks with a due date.",
    "data_models": [{"name": "Task", "fields": [
        {"name": "title", "type": "string"},
        {"name": "done", "type": "boolean"},
        {"name": "due", "type": "date", "required": False},
    ]}],
}  # fmt: skip
SPECS: dict[str, dict[str, Any]] = {
    "fastapi-sqlite-todo": {**_TODO, "framework": "fastapi", "database": "sqlite",
                            "features": ["pagination", "timestamps"]},
    "fastapi-mongodb-todo-auth": {**_TODO, "framework": "fastapi", "database": "mongodb",
                                  "features": ["auth", "search", "soft_delete"]},
    "nextjs-postgresql-todo": {**_TODO, "framework": "nextjs", "database": "postgresql",
                               "features": ["auth", "pagination"]},
}  # fmt: skip


def generated(name: str) -> dict[str, str]:
    return generate(FullstackCreate.model_validate(SPECS[name]))


def committed(name: str) -> dict[str, str]:
    root = GOLDEN / name
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def write_all() -> None:
    for name in SPECS:
        root = GOLDEN / name
        shutil.rmtree(root, ignore_errors=True)
        for path, content in generated(name).items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        print(f"wrote {root}")


if __name__ == "__main__":
    write_all()
