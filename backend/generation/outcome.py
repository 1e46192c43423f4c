"""How a job ends, as the code that runs it reports it."""

from dataclasses import dataclass


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
    its name. `prompt` is what the owner asked, for the project's conversation."""

    files: dict[str, str | None]
    summary: str
    project_name: str | None = None
    prompt: str = ""
