"""How a job ends, as the code that runs it reports it."""

from dataclasses import dataclass

from schemas.generation_schemas import Checks


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
