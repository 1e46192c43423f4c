"""Generation jobs: requests, the job, its events, changes, usage and the model catalogue."""

import keyword
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, field_validator

from schemas.common import ResourceId, Strict, example
from schemas.project_schemas import WINDOWS_RESERVED, ProjectName

JobKind = Literal["agentic", "fullstack"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
ChangeAction = Literal["created", "updated", "deleted"]
FieldType = Literal[
    "string", "text", "integer", "float", "boolean", "date", "datetime", "email", "url", "uuid"
]
Feature = Literal["auth", "pagination", "search", "timestamps", "soft_delete"]
Framework = Literal["fastapi", "nextjs"]
Database = Literal["mongodb", "postgresql", "sqlite"]

IDENTIFIER = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
# Words that cannot name a model or field in generated Python or JavaScript/TypeScript
# (contextual keywords such as `type` or `get` can). SQL keywords are not here: the generator
# quotes or pluralises SQL names, so `User`, `Order` or `Group` work.
_JS_RESERVED = {
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "implements",
    "interface",
    "let",
    "package",
    "private",
    "protected",
    "public",
    "static",
    "yield",
    "await",
    "arguments",
    "eval",
    "undefined",
}
RESERVED = {word.lower() for word in keyword.kwlist} | _JS_RESERVED
# Names the generated code defines itself (its own fields, its base classes and imports).
GENERATED_FIELDS = {"id", "owner_id", "created_at", "updated_at", "deleted_at", "metadata"}
GENERATED_MODELS = {
    "Base",
    "BaseModel",
    "Field",
    "Settings",
    "Page",
    "AuthUser",
    "UUID",
    "EmailStr",
    "HttpUrl",
    "Session",
    "Request",
    "Response",
    "Query",
    "Depends",
    "FastAPI",
    "APIRouter",
    "Annotated",
}

Identifier = Annotated[
    str, Field(pattern=IDENTIFIER, description="Letter, then letters, digits, _")
]


def _not_reserved(name: str) -> str:
    if name.lower() in RESERVED:
        raise ValueError(f"{name!r} is a reserved word in Python or JavaScript/TypeScript")
    return name


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise ValueError(f"{what} names must be unique (case-insensitively): {name!r}")
        seen.add(name.lower())


class ModelField(Strict):
    name: Identifier
    type: FieldType
    required: StrictBool = True

    @field_validator("name")
    @classmethod
    def _usable(cls, name: str) -> str:
        _not_reserved(name)
        if name.lower() in GENERATED_FIELDS or name.startswith("model_"):
            raise ValueError(f"{name!r} is defined by the generated code; choose another name")
        return name


class DataModel(Strict):
    name: Identifier
    fields: Annotated[list[ModelField], Field(min_length=1, max_length=50)]

    @field_validator("name")
    @classmethod
    def _usable(cls, name: str) -> str:
        _not_reserved(name)
        if name in GENERATED_MODELS:
            raise ValueError(f"{name!r} is defined by the generated code; choose another name")
        if name.upper() in WINDOWS_RESERVED:  # it names generated files
            raise ValueError(f"{name!r} cannot be a file name on Windows; choose another name")
        return name

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[ModelField]) -> list[ModelField]:
        _unique([field.name for field in fields], "field")
        return fields


class FullstackCreate(Strict):
    model_config = example(
        project_name="Shop",
        description="A small shop",
        data_models=[
            {
                "name": "Product",
                "fields": [{"name": "title", "type": "string"}, {"name": "price", "type": "float"}],
            }
        ],
        features=["pagination"],
        framework="fastapi",
        database="sqlite",
    )
    project_name: ProjectName
    description: Annotated[str, Field(max_length=2000)] = ""
    data_models: Annotated[list[DataModel], Field(min_length=1, max_length=30)]
    features: Annotated[list[Feature], Field(max_length=5)] = Field(default_factory=list)
    framework: Framework = "fastapi"
    database: Database = "sqlite"

    @field_validator("project_name")
    @classmethod
    def _not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("project_name cannot be blank")
        return name

    @field_validator("data_models")
    @classmethod
    def _unique_models(cls, models: list[DataModel]) -> list[DataModel]:
        _unique([model.name for model in models], "model")
        return models

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: list[Feature]) -> list[Feature]:
        return sorted(set(features), key=features.index)


class AgenticCreate(Strict):
    model_config = example(prompt="Add a /health endpoint with a test")
    prompt: Annotated[str, Field(min_length=1, max_length=20_000)]
    project_id: Annotated[ResourceId, Field(max_length=64)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class JobError(BaseModel):
    code: str
    message: str


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: str = Field(
        default="0", description="US dollars, a decimal string, at the model catalogue's prices"
    )


class ResultFile(BaseModel):
    path: str
    language: str
    size: int
    action: ChangeAction


class Check(BaseModel):
    """One test of a verification run (a `check` event)."""

    name: str
    status: Literal["passed", "failed", "error"]
    duration_ms: int


class Checks(BaseModel):
    """What ran the job's code in the sandbox (a `checks` event, and `result.checks`)."""

    status: Literal["passed", "failed", "skipped"]
    reason: str | None = Field(
        description="Why the run was skipped (sandbox_unavailable, environment_unavailable, "
        "needs_database_server, canceled) or cut short (timeout, "
        "output_limit); null otherwise"
    )
    command: str | None
    passed: int
    failed: int
    errors: int
    duration_ms: int
    output_tail: str = Field(description="The run's last output, at most 4,000 characters")


class JobResult(BaseModel):
    summary: str
    files: list[ResultFile]
    checks: Checks | None = Field(
        default=None, description="The job's code as run in the sandbox; null when not run"
    )


class JobRead(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    stage: str
    project_id: str | None
    model: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reverted_at: datetime | None
    error: JobError | None
    usage: Usage
    result: JobResult | None


class ChangeRead(BaseModel):
    path: str
    action: ChangeAction
    language: str
    size_before: int | None
    size_after: int | None
    diff: str | None = Field(description="Unified diff; null for binary-looking or over 256 KiB")


class ChangeList(BaseModel):
    data: list[ChangeRead]


class ModelInfo(BaseModel):
    id: str
    provider: str
    kinds: list[JobKind]
    plans: list[str]
    context_window: int
    input_usd_per_million: str = Field(description="Decimal string")
    output_usd_per_million: str = Field(description="Decimal string")


class ModelCatalogue(BaseModel):
    default_model: str | None
    models: list[ModelInfo]


class TokenTotals(BaseModel):
    prompt: int
    completion: int


class UsageRead(BaseModel):
    plan: str
    period_start: datetime
    period_end: datetime
    quota: int
    used: int
    remaining: int
    active_jobs: int
    max_active_jobs: int
    tokens: TokenTotals
    cost: str = Field(description="This month's model spend, US dollars as a decimal string")
    token_budget: int = Field(description="Model tokens (prompt + completion) a month")
    tokens_remaining: int = Field(description="Of the budget, less what calls in flight hold")
    job_cost_cap: str = Field(description="The most one job may spend, US dollars")
