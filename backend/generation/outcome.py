"""How a job ends, as the code that runs it reports it."""

from dataclasses import dataclass

from schemas.generation_schemas import Checks

# Failures that are the platform's, not the owner's: the generation is given back even when
# the job spent model tokens. Every other failure, and a cancel, keeps the charge of a job
# that made a model call (the owner's budget, request or cancel ended it); a job that spent
# no tokens (every fullstack job) is given back whatever ended it.
PLATFORM_FAILURES = frozenset({"llm_unavailable", "worker_lost", "internal_error", "checks_failed"})


def given_back(status: str, code: str | None, tokens_spent: bool) -> bool:
    """Whether a job that ended with `status` (and error `code`) gets its generation back."""
    if status == "succeeded":
        return False
    return not tokens_spent or (status == "failed" and code in PLATFORM_FAILURES)


class JobFailure(Exception):
    """The job ends `failed` with this code and message (both shown to its owner)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JobCanceled(Exception):
    """The owner asked to stop; the job ends `canceled`."""


@dataclass
class Output:
    """What a job produced: files to write (None: delete), a summary, and for a new project
    its name. `prompt` is what the owner asked, for the project's conversation; `checks` what
    ran the files in the sandbox."""

    files: dict[str, str | None]
    summary: str
    project_name: str | None = None
    prompt: str = ""
    checks: Checks | None = None
