"""Shapes every resource shares."""

from pydantic import BaseModel

# A list answers every matching row up to this many; `X-Total-Count` says how many match.
LIST_CAP = 1000


class ErrorBody(BaseModel):
    """Every error: a stable `code` and a human `detail` (validation errors add `errors`)."""

    code: str
    detail: str


NOT_FOUND = {404: {"model": ErrorBody, "description": "Not found"}}
