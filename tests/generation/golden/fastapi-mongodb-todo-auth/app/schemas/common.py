"""Shapes every resource shares."""

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    detail: str
