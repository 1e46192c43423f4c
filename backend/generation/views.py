"""A stored job as the API shows it."""

from typing import Any

from backend.generation.costs import usd
from backend.generation.models import Job
from schemas.generation_schemas import JobRead, Usage


def job_view(job: Job) -> JobRead:
    fields = job.model_dump()
    usage = job.usage
    fields["usage"] = Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost=usd(usage.cost_nanos),
    )
    return JobRead.model_validate(fields)


def terminal_event(job: Job) -> tuple[str, dict[str, Any]]:
    """The event that ends a job's stream, for a job in its terminal state."""
    if job.status == "succeeded":
        return "done", job_view(job).model_dump(mode="json")
    if job.status == "canceled":
        return "canceled", {"status": "canceled"}
    error = job.error
    return "error", (error.model_dump() if error else {"code": "failed", "message": "failed"})
