"""A generation job as stored, its events and its changes."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.generation_schemas import JobError, JobResult

ACTIVE = ("queued", "running")
TERMINAL_EVENTS = ("done", "error", "canceled")


class JobUsage(BaseModel):
    """What the job spent, and the tokens it holds against its owner's month for a model call
    in flight (given back when the call settles or the job ends)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nanos: int = 0
    held_tokens: int = 0
    held_period: str | None = None

    @property
    def spent(self) -> bool:
        return self.prompt_tokens + self.completion_tokens > 0


class Job(BaseModel):
    id: str
    owner_id: str
    kind: str
    status: str
    progress: int
    stage: str
    project_id: str | None
    model: str | None
    request: dict[str, Any]
    result: JobResult | None
    error: JobError | None
    usage: JobUsage
    attempts: int
    runner_id: str | None
    cancel_requested: bool
    period: str
    # Whether the job creates its project and holds that project's slot (taken at admission,
    # given back unless the job succeeds); a document without the field holds none.
    project_slot: bool = False
    sent_at: datetime | None = None  # when its queue message was last sent
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reverted_at: datetime | None
    data_expires_at: datetime | None = None  # its events and changes go then


class Event(BaseModel):
    seq: int
    type: str
    data: dict[str, Any]


class Change(BaseModel):
    """One path a job writes: `after` is the new content, None to delete it. `action` and
    `before` are fixed when the change is applied (until then they are read off the project)."""

    path: str
    language: str
    after: str | None
    action: str | None = None
    before: str | None = None
