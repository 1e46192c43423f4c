"""Shapes shared by every area: problems, pages, service documents."""

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=["https://devora.dev/problems/not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["not_found"])
    request_id: str | None


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[ValidationIssue]
    error_count: int = Field(description="How many problems were found; at most 20 are listed")


class NotReadyProblem(Problem):
    checks: dict[str, str]


class ApiInfo(BaseModel):
    name: str
    version: str
    docs_url: str
    openapi_url: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(examples=[{"mongodb": "ok", "redis": "ok"}])


def _canonical(value: str) -> str:
    return value.lower()


# A resource id as clients send it, in its one canonical form (MongoDB reads `6B06…` and
# `6b06…` as the same ObjectId; cache keys and scopes must too).
ResourceId = Annotated[str, AfterValidator(_canonical)]


MAX_UNKNOWN_KEYS = 20


def example(**values: Any) -> ConfigDict:
    """A request model's example, shown in the docs and tried first by schemathesis."""
    return ConfigDict(json_schema_extra={"examples": [values]})


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a client never sets what it does not own."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_keys(cls, data: Any) -> Any:
        # Pydantic reports every unknown key and FastAPI turns each report into a dict, so the
        # work would grow with the body: past a handful of unknown keys, one error says it.
        if isinstance(data, dict) and len(data) > len(cls.model_fields) + MAX_UNKNOWN_KEYS:
            raise ValueError(
                f"too many fields ({len(data)}); known: {', '.join(cls.model_fields) or 'none'}"
            )
        return data


def problem_example(code: str, status: int) -> dict[str, Any]:
    return {
        "type": f"https://devora.dev/problems/{code}",
        "title": "…",
        "status": status,
        "detail": "…",
        "code": code,
        "request_id": "5f0c…",
    }


T = TypeVar("T")


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int
    total_pages: int


class Page(BaseModel, Generic[T]):
    """One page of a list: `?page=1&limit=20`."""

    data: list[T]
    meta: PageMeta

    @classmethod
    def of(cls, data: list[T], *, page: int, limit: int, total: int) -> "Page[T]":
        return cls(
            data=data,
            meta=PageMeta(page=page, limit=limit, total=total, total_pages=-(-total // limit)),
        )
