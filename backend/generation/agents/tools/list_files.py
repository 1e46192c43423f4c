"""`list_files()`: every path in the project, with its size."""

from backend.generation.agents.tools.base import Args, Tool, ToolContext


class ListFilesArgs(Args):
    pass


def list_files(context: ToolContext, args: Args) -> str:
    files = context.workspace.files
    if not files:
        return "(the project has no files yet)"
    return "\n".join(f"{path} ({len(files[path].encode())} bytes)" for path in sorted(files))


TOOL = Tool("list_files", "List the project's files and their sizes.", ListFilesArgs, list_files)
