"""`run_tests()`: run the project's test command in the sandbox over the current files.

The model is told the counts, the first failing tests and the end of the output (as data, not
instructions). The developer and the integrations specialist may not `finish` while the last
run failed or the files changed after it (`agents/verification.py`)."""

from backend.generation.agents.tools.base import Args, Tool, ToolContext
from backend.generation.agents.workspace import ToolError


class RunTestsArgs(Args):
    pass


async def run_tests(context: ToolContext, args: Args) -> str:
    if context.verification is None:
        raise ToolError("this role cannot run tests")
    return await context.verification.run()


TOOL = Tool(
    "run_tests",
    "Run the project's tests (the command in the plan) on the current files, in a sandbox "
    "with no network. Returns the counts, the first failures and the end of the output.",
    RunTestsArgs,
    run_tests,
)
