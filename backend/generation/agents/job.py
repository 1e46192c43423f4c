"""The `agentic` job: gather the project's context, run the squad, hand the changes over."""

from backend.config import Settings
from backend.generation.agents.squad import Squad
from backend.generation.agents.untrusted import fenced
from backend.generation.context import Executor, JobContext
from backend.generation.models import Job
from backend.generation.outcome import JobFailure, Output
from backend.integrations.llm import LLMClient


def agentic_executor(settings: Settings) -> Executor:
    """One model client per process, shared by its jobs."""
    squad = Squad(LLMClient(settings), settings)

    async def run(job: Job, context: JobContext) -> Output:
        files, brief = await _context(job, context, settings.agent_context_messages)
        return await squad.run(job, context, files, brief)

    return run


async def _context(job: Job, context: JobContext, recent: int) -> tuple[dict[str, str], str]:
    """The project's files, and the brief every role starts from. What users or an earlier
    job wrote (the request, file names, conversation, last summary) is fenced as data."""
    files: dict[str, str] = {}
    parts = [fenced("The request", job.request["prompt"])]
    if job.project_id is not None:
        project = await context.project()
        if project is None:
            raise JobFailure("project_missing", "The project no longer exists")
        files = {file.path: file.content for file in project.files}
        listing = "\n".join(f"{f.path} ({f.size} bytes)" for f in project.files)
        parts.append(
            fenced("The project's files (read them with read_file)", listing)
            if listing
            else "The project has no files yet."
        )
        conversation = await context.recent_messages(recent)
        if conversation:
            lines = "\n".join(f"{m.role}: {m.content}" for m in conversation)
            parts.append(fenced("The recent conversation", lines))
        previous = await context.previous_summary()
        if previous is not None:
            parts.append(fenced("The previous job's summary", previous))
    else:
        parts.append("The project is new and empty.")
    return files, "\n\n".join(parts)
