"""A job's file changes: applied by the same rules as the files API, and shown as diffs."""

import difflib

import anyio
from pydantic import TypeAdapter, ValidationError

from backend.generation.models import Change
from backend.generation.outcome import JobFailure
from backend.repositories.base import utcnow
from backend.repositories.projects import Limits, ProjectFile
from backend.services.project_rules import MAX_FILE_BYTES, language_of
from schemas.generation_schemas import ChangeRead
from schemas.project_schemas import FilePath

MAX_DIFF_BYTES = 256 * 1024
_PATH = TypeAdapter(FilePath)


def file_action(existed: bool, content: str | None) -> str:
    """What writing `content` (None deletes) does to a path that `existed` or not."""
    if content is None:
        return "deleted"
    return "updated" if existed else "created"


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


def apply_changes(
    files: list[ProjectFile], writes: dict[str, str | None], limits: Limits
) -> tuple[list[ProjectFile], list[Change]]:
    """The project's files after `writes` (None deletes), and what changed; a write that
    breaks a rule (an allowed path, `MAX_FILE_BYTES` a file, `limits` for the project) fails
    the whole job."""
    current = {file.path: file for file in files}
    changes: list[Change] = []
    now = utcnow()
    for path in sorted(writes):
        content = writes[path]
        try:
            _PATH.validate_python(path)
        except ValidationError:
            raise JobFailure("invalid_path", f"Not an allowed file path: {path[:300]!r}") from None
        before = current.get(path)
        if content is None:
            if before is None:
                continue
            del current[path]
            changes.append(_change(path, before.language, "deleted", before.content, None))
            continue
        size = len(content.encode())
        if size > MAX_FILE_BYTES:
            raise JobFailure(
                "file_too_large",
                f"{path} would be {size} bytes; the limit is {_mib(MAX_FILE_BYTES)}",
            )
        if before is not None and before.content == content:
            continue
        language = before.language if before else language_of(path)
        current[path] = ProjectFile(
            path=path, content=content, language=language, size=size, updated_at=now
        )
        action = file_action(before is not None, content)
        changes.append(_change(path, language, action, before.content if before else None, content))
    result = list(current.values())
    if len(result) > limits.max_files:
        raise JobFailure(
            "too_many_files", f"The project would hold {len(result)} files; max {limits.max_files}"
        )
    total = sum(file.size for file in result)
    if total > limits.max_total_bytes:
        raise JobFailure(
            "project_too_large",
            f"The project would be {total} bytes; max {_mib(limits.max_total_bytes)}",
        )
    return result, changes


def _change(path: str, language: str, action: str, before: str | None, after: str | None) -> Change:
    return Change(path=path, language=language, action=action, before=before, after=after)


def _looks_binary(text: str | None) -> bool:
    return text is not None and "\x00" in text


def _diff(change: Change) -> str | None:
    before, after = change.before or "", change.after or ""
    if _looks_binary(change.before) or _looks_binary(change.after):
        return None
    if len(before.encode()) + len(after.encode()) > MAX_DIFF_BYTES:
        return None
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile="/dev/null" if change.before is None else f"a/{change.path}",
        tofile="/dev/null" if change.after is None else f"b/{change.path}",
    )
    return "".join(lines)


def _views(changes: list[Change], applied: bool) -> list[ChangeRead]:
    views = []
    for change in changes:
        if not applied:
            # Not landed yet: the action is what the write would do to the project as it is.
            if change.after is None and change.before is None:
                continue
            if change.after is not None and change.after == change.before:
                continue
            action = file_action(change.before is not None, change.after)
            change = change.model_copy(update={"action": action})
        views.append(
            ChangeRead(
                path=change.path,
                action=change.action,
                language=change.language,
                size_before=None if change.before is None else len(change.before.encode()),
                size_after=None if change.after is None else len(change.after.encode()),
                diff=_diff(change),
            )
        )
    return views


async def change_views(changes: list[Change], *, applied: bool) -> list[ChangeRead]:
    """Each change with its unified diff, computed off the event loop."""
    return await anyio.to_thread.run_sync(_views, changes, applied)
