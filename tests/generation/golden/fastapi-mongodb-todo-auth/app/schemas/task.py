"""Task: `TaskCreate`, `TaskUpdate`, `TaskRead`."""

from datetime import date
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=255)]
    done: StrictBool
    due: date | None = None


_REQUIRED = ['title', 'done']


class TaskUpdate(BaseModel):
    """Every field optional; only the ones sent change. Required fields cannot be nulled."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    done: StrictBool | None = None
    due: date | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> "TaskUpdate":
        for name in _REQUIRED:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    done: bool
    due: date | None
