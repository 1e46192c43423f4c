"""The job kinds this build runs, each with its executor."""

from backend.config import Settings
from backend.generation.agents.job import agentic_executor
from backend.generation.context import Executor
from backend.generation.fullstack.job import run_fullstack


def executors(settings: Settings) -> dict[str, Executor]:
    """`fullstack` always; `agentic` when a model provider is configured."""
    table: dict[str, Executor] = {"fullstack": run_fullstack}
    if settings.llm_configured:
        table["agentic"] = agentic_executor(settings)
    return table
