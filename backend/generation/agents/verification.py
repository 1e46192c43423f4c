"""The squad's test runs over one job's workspace, and when a role may say it is done.

A role that can run tests may not `finish` while the last run failed, or while the files
changed after it (a job that changed nothing has nothing to run). Where the sandbox is off or
missing, runs are `skipped` (`sandbox_unavailable`) and do not hold `finish` back. When the
job's budget runs out first, the job ends `failed` with that budget's code, as any job does:
code that failed its tests is never applied as a success."""

from backend.generation.agents.untrusted import fenced
from backend.generation.agents.workspace import Workspace
from backend.generation.context import JobContext
from backend.generation.sandbox.verify import command_plan
from schemas.generation_schemas import Checks

FIRST_FAILURES = 10
OUTPUT_CHARS = 2000


class Verification:
    def __init__(self, context: JobContext, workspace: Workspace, available: bool) -> None:
        self.context = context
        self.workspace = workspace
        self.available = available
        self.command: str | None = None  # the architect's; `python -m pytest` if it named none
        self.last: Checks | None = None
        self.tested: int | None = None  # the workspace version the last run saw

    async def run(self) -> str:
        plan = command_plan(self.command)
        checks, tests = await self.context.verify(dict(self.workspace.files), plan)
        self.last, self.tested = checks, self.workspace.version
        if checks.status == "skipped":
            return f"tests not run: {checks.reason}"
        failing = [t.name for t in tests if t.status != "passed"][:FIRST_FAILURES]
        lines = [
            f"{checks.status}: {checks.passed} passed, {checks.failed} failed, "
            f"{checks.errors} errors ({checks.command}, {checks.duration_ms} ms)"
            + (f"; cut short: {checks.reason}" if checks.reason else "")
        ]
        if failing:
            lines.append("first failures: " + ", ".join(failing))
        lines.append(fenced("The end of the test output", checks.output_tail[-OUTPUT_CHARS:]))
        return "\n".join(lines)

    def refusal(self) -> str | None:
        """Why `finish` is refused now, or None."""
        if not self.available or not self.workspace.changes():
            return None
        if self.tested != self.workspace.version:
            return "run_tests first: the files changed after the last test run"
        if self.last is not None and self.last.status == "failed":
            return "the last test run failed: fix the code (or the tests) and run_tests again"
        return None

    def final(self) -> Checks | None:
        """The checks of the files the job hands over: None when it changed nothing."""
        if not self.workspace.changes():
            return None
        if not self.available:
            return self.context.unavailable_checks()
        return self.last
