"""A job's staged copy of its project: the only thing the agents' tools can touch.

Every write follows the files API's rules (path syntax, 1 MiB a file, 500 files, 8 MiB in
all); a broken rule is a `ToolError` the model is told about, never a crash.
"""

from pydantic import TypeAdapter, ValidationError

from backend.repositories.projects import Limits
from backend.services.project_rules import MAX_FILE_BYTES
from schemas.project_schemas import FilePath

_PATH = TypeAdapter(FilePath)


class ToolError(Exception):
    """A tool call the model got wrong; the message goes back to it."""


class Workspace:
    def __init__(self, files: dict[str, str], limits: Limits) -> None:
        self.original = dict(files)
        self.files = dict(files)
        self.limits = limits
        self.version = 0  # one more at every change: what a test run saw

    @staticmethod
    def check_path(path: str) -> str:
        try:
            return _PATH.validate_python(path)
        except ValidationError as exc:
            raise ToolError(f"not an allowed path: {exc.errors()[0]['msg']}") from None

    def read(self, path: str) -> str:
        if self.check_path(path) not in self.files:
            raise ToolError(f"no file at {path}")
        return self.files[path]

    def write(self, path: str, content: str) -> int:
        self.check_path(path)
        size = len(content.encode())
        if size > MAX_FILE_BYTES:
            raise ToolError(f"{path} would be {size} bytes; a file holds at most 1 MiB")
        if path not in self.files and len(self.files) >= self.limits.max_files:
            raise ToolError(f"the project already holds {self.limits.max_files} files")
        total = self.total_bytes() - len(self.files.get(path, "").encode()) + size
        if total > self.limits.max_total_bytes:
            raise ToolError("the project's files would exceed 8 MiB in all")
        self.files[path] = content
        self.version += 1
        return size

    def edit(self, path: str, old: str, new: str) -> int:
        content = self.read(path)
        count = content.count(old) if old else 0
        if count != 1:
            found = "not found" if count == 0 else f"found {count} times"
            raise ToolError(f"`old` must occur exactly once in {path}; it was {found}")
        return self.write(path, content.replace(old, new, 1))

    def delete(self, path: str) -> None:
        self.read(path)
        del self.files[path]
        self.version += 1

    def total_bytes(self) -> int:
        return sum(len(content.encode()) for content in self.files.values())

    def changes(self) -> dict[str, str | None]:
        """Path → new content (None: deleted), against the project the job started from."""
        changed: dict[str, str | None] = {
            path: content
            for path, content in self.files.items()
            if self.original.get(path) != content
        }
        changed.update({path: None for path in self.original if path not in self.files})
        return changed
