"""Shapes every resource shares."""

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int
    total_pages: int


class Page(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta


class ErrorBody(BaseModel):
    """Every error: a stable `code` and a human `detail` (validation errors add `errors`)."""

    code: str
    detail: str


NOT_FOUND = {404: {"model": ErrorBody, "description": "Not found"}}
