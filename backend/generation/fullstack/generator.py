"""The full-stack generator: a spec in, a complete project out, from Jinja2 templates.

Deterministic: the same spec gives byte-identical files (no clocks, no randomness, sorted
iteration). One template per generated file under `templates/<framework>/`; a template whose
name holds `__model__` is rendered once per data model. CPU-bound: call it off the event loop.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from schemas.generation_schemas import FullstackCreate

TEMPLATES = Path(__file__).parent / "templates"
MODEL_MARK = "__model__"  # in a template's path: one file per model, named by its snake_case
MODELS_MARK = "__models__"  # the same, named by the plural (URL paths)

# Per field type: Python type in requests, Python type as stored and read, SQLAlchemy column
# type, TypeScript type, zod schema, and for the generated tests two valid values and a bad one.
FIELD_TYPES: dict[str, dict[str, Any]] = {
    "string": {
        "py": "Annotated[str, Field(min_length=1, max_length=255)]",
        "read": "str",
        "sa": "String(255)",
        "ts": "string",
        "zod": "z.string().min(1).max(255)",
        "sample": "sample text",
        "other": "other text",
        "bad": 12,
    },
    "text": {
        "py": "Annotated[str, Field(max_length=10000)]",
        "read": "str",
        "sa": "Text",
        "ts": "string",
        "zod": "z.string().max(10000)",
        "sample": "A longer text.",
        "other": "Another text.",
        "bad": ["x"],
    },
    "integer": {
        # The integers a JSON client reads exactly (±(2^53 - 1)), in both frameworks (Zod 4's
        # `int()` is that range): a larger number is a 422, never a rounding or an overflow.
        "py": "Annotated[StrictInt, Field(ge=-(2**53 - 1), le=2**53 - 1)]",
        "read": "int",
        "sa": "BigInteger",
        "ts": "number",
        "zod": "z.number().int()",
        "sample": 7,
        "other": 8,
        "bad": "seven",
        "huge": 2**53,
    },
    "float": {
        "py": "Annotated[float, Field(allow_inf_nan=False)]",
        "read": "float",
        "sa": "Float",
        "ts": "number",
        "zod": "z.number().finite()",
        "sample": 1.5,
        "other": 2.5,
        "bad": "1.5x",
    },
    "boolean": {
        "py": "StrictBool",
        "read": "bool",
        "sa": "Boolean",
        "ts": "boolean",
        "zod": "z.boolean()",
        "sample": True,
        "other": False,
        "bad": "maybe",
    },
    "date": {
        "py": "date",
        "read": "date",
        "sa": "Date",
        "ts": "string",
        "zod": "z.string().date()",
        "sample": "2024-01-02",
        "other": "2024-02-03",
        "bad": "2024-13-45",
    },
    "datetime": {
        "py": "AwareDatetime",
        "read": "datetime",
        "sa": "UTCDateTime",
        "ts": "string",
        # Next.js stores and returns date-times as UTC ISO strings on every database.
        "zod": "z.string().datetime({ offset: true }).transform((v) => new Date(v).toISOString())",
        "sample": "2024-01-02T03:04:05Z",
        "other": "2024-02-03T04:05:06Z",
        "bad": "yesterday",
    },
    "email": {
        "py": "EmailStr",
        "read": "str",
        "sa": "String(320)",
        "ts": "string",
        "zod": "z.string().email()",
        "sample": "someone@example.com",
        "other": "else@example.com",
        "bad": "not-an-email",
    },
    "url": {
        "py": "HttpUrl",
        "read": "str",
        "sa": "String(2048)",
        "ts": "string",
        "zod": "z.string().url()",
        "sample": "https://example.com/a",
        "other": "https://example.com/b",
        "bad": "not a url",
    },
    "uuid": {
        "py": "UUID",
        "read": "UUID",
        "sa": "Uuid",
        "ts": "string",
        # Any 8-4-4-4-12 hex, as Python reads a UUID (zod's uuid() wants an RFC 4122 variant).
        "zod": "z.guid()",
        "sample": "12345678-1234-5678-1234-567812345678",
        "other": "87654321-4321-8765-4321-876543218765",
        "bad": "not-a-uuid",
    },
}
SEARCHABLE = ("string", "text", "email")
# Column types of the Next.js data layer's SQL (`sql/schema.sql`).
SQL_TYPES = {
    "postgresql": {
        "string": "VARCHAR(255)",
        "text": "TEXT",
        "integer": "BIGINT",
        "float": "DOUBLE PRECISION",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "datetime": "TIMESTAMPTZ",
        "email": "VARCHAR(320)",
        "url": "VARCHAR(2048)",
        "uuid": "UUID",
    },
    "sqlite": {
        "string": "TEXT",
        "text": "TEXT",
        "integer": "INTEGER",
        "float": "REAL",
        "boolean": "INTEGER",
        "date": "TEXT",
        "datetime": "TEXT",
        "email": "TEXT",
        "url": "TEXT",
        "uuid": "TEXT",
    },
}

PINNED = {
    "fastapi": "fastapi==0.136.0",
    "uvicorn": "uvicorn[standard]==0.54.0",
    "pydantic": "pydantic==2.14.3",
    "pydantic-settings": "pydantic-settings==2.16.3",
    "email-validator": "email-validator==2.4.0",
    # Starlette's TestClient runs on httpx2 (with httpx it warns that httpx is deprecated).
    "httpx2": "httpx2==2.16.2",
    "pytest": "pytest==9.2.0",
    "pyyaml": "PyYAML==6.0.3",
    "pyjwt": "PyJWT==2.15.1",
    "sqlalchemy": "SQLAlchemy==2.1.9",
    "psycopg": "psycopg[binary]==3.3.9",
    "pymongo": "pymongo==4.20.0",
    "alembic": "alembic==1.20.1",
    "ruff": "ruff==0.17.6",
}


def snake(name: str) -> str:
    """`OrderItem` → `order_item`, `HTTPLog` → `http_log`."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    text = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", text)
    return text.lower()


def plural(word: str) -> str:
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


def camel(name: str) -> str:
    parts = snake(name).split("_")
    return parts[0] + "".join(part.title() for part in parts[1:])


@dataclass
class ModelView:
    name: str
    snake: str
    plural: str
    camel: str
    fields: list[dict[str, Any]]
    searchable: list[str] = field(default_factory=list)
    types: set[str] = field(default_factory=set)

    def sa_imports(self, features: set[str]) -> list[str]:
        """SQLAlchemy column types the table uses (and `ForeignKey` for its owner)."""
        names = {"Integer"} | {f["sa"].split("(")[0] for f in self.fields}
        if "auth" in features:
            names.add("ForeignKey")
        return sorted(names - {"UTCDateTime"})

    def uses_utc_datetime(self, features: set[str]) -> bool:
        return "datetime" in self.types or bool(features & {"timestamps", "soft_delete"})


def _model_views(spec: FullstackCreate) -> list[ModelView]:
    views = []
    for model in spec.data_models:
        name_snake = snake(model.name)
        fields = [
            {
                "name": f.name,
                "type": f.type,
                "required": f.required,
                **FIELD_TYPES[f.type],
                "sql": SQL_TYPES.get(spec.database, {}).get(f.type, ""),
            }
            for f in model.fields
        ]
        views.append(
            ModelView(
                name=model.name,
                snake=name_snake,
                plural=plural(name_snake),
                camel=camel(model.name),
                fields=fields,
                searchable=[f["name"] for f in fields if f["type"] in SEARCHABLE],
                types={f["type"] for f in fields},
            )
        )
    return views


def _requirements(spec: FullstackCreate) -> list[str]:
    names = [
        "fastapi",
        "uvicorn",
        "pydantic",
        "pydantic-settings",
        "email-validator",
        "httpx2",
        "pytest",
        "pyyaml",
        "ruff",
    ]
    if "auth" in spec.features:
        names.append("pyjwt")
    if spec.database == "mongodb":
        names.append("pymongo")
    else:
        names += ["sqlalchemy", "alembic"]
        if spec.database == "postgresql":
            names.append("psycopg")
    return sorted(PINNED[name] for name in names)


def _environment(framework: str) -> Environment:
    # Generated source code, not HTML: escaping would corrupt it.
    env = Environment(  # noqa: S701
        loader=FileSystemLoader(TEMPLATES / framework),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = repr
    env.filters["json"] = json.dumps
    return env


def generate(spec: FullstackCreate) -> dict[str, str]:
    """Every file of the project, path → content."""
    env = _environment(spec.framework)
    models = _model_views(spec)
    slug = re.sub(r"[^a-z0-9]+", "_", spec.project_name.lower()).strip("_") or "app"
    context: dict[str, Any] = {
        "spec": spec,
        "project_name": spec.project_name,
        "description": spec.description,
        "slug": slug,
        "features": set(spec.features),
        "database": spec.database,
        "models": models,
        "requirements": _requirements(spec),
    }
    files: dict[str, str] = {}
    for template_name in sorted(env.list_templates(extensions=["j2"])):
        template = env.get_template(template_name)
        target = template_name.removesuffix(".j2")
        if MODEL_MARK in target or MODELS_MARK in target:
            for model in models:
                path = target.replace(MODELS_MARK, model.plural).replace(MODEL_MARK, model.snake)
                files[path] = template.render(**context, model=model)
        else:
            text = template.render(**context)
            if text.strip():  # a template may decide it has nothing to say for this spec
                files[target] = text
    if spec.framework == "fastapi":
        files["openapi.yaml"] = openapi_document(spec, models)
    return dict(sorted(files.items()))


def openapi_document(spec: FullstackCreate, models: list[ModelView]) -> str:
    """The API design as OpenAPI 3.1 paths; the generated project's tests check it against
    what its app really serves."""
    paths: dict[str, Any] = {}
    for model in models:
        collection, item = f"/{model.plural}", f"/{model.plural}/{{item_id}}"
        tag = [model.plural]
        paths[collection] = {
            "get": {"tags": tag, "summary": f"List {model.plural}"},
            "post": {"tags": tag, "summary": f"Create a {model.snake}"},
        }
        paths[item] = {
            "get": {"tags": tag, "summary": f"Read a {model.snake}"},
            "patch": {"tags": tag, "summary": f"Update a {model.snake}"},
            "delete": {"tags": tag, "summary": f"Delete a {model.snake}"},
        }
    if "auth" in spec.features:
        paths["/auth/register"] = {"post": {"tags": ["auth"], "summary": "Create an account"}}
        paths["/auth/login"] = {"post": {"tags": ["auth"], "summary": "Get an access token"}}
    paths["/healthz"] = {"get": {"tags": ["service"], "summary": "Liveness"}}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": spec.project_name,
            "version": "1.0.0",
            "description": spec.description or spec.project_name,
        },
        "paths": dict(sorted(paths.items())),
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
