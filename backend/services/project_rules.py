"""The rules projects and generation jobs share: storage limits, caps counted with the
project or message they admit, languages by extension and the cache scopes of a project."""

from dataclasses import dataclass
from pathlib import PurePosixPath

from backend.config import Settings
from backend.errors import AppError, Conflict, NotFound, PayloadTooLarge
from backend.repositories.base import Session
from backend.repositories.messages import Message, MessageRepository
from backend.repositories.projects import Limits, Project, ProjectFile, ProjectRepository
from backend.repositories.users import User, UserRepository

MAX_FILE_BYTES = 1024 * 1024
LIMITS = Limits(max_files=500, max_total_bytes=8 * 1024 * 1024)

_LANGUAGES = {
    ".py": "python",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".json": "json",
    ".md": "markdown",
    ".html": "html",
    ".css": "css",
    ".scss": "scss",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".toml": "toml",
    ".sql": "sql",
    ".sh": "shell",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".rb": "ruby",
    ".txt": "text",
}


class FileTooLarge(PayloadTooLarge):
    code, title = "file_too_large", "A file's content is over 1 MiB"


class ProjectTooLarge(PayloadTooLarge):
    code, title = "project_too_large", "The project's files would exceed 8 MiB in all"


class TooManyFiles(AppError):
    status, code, title = 422, "too_many_files", "A project holds at most 500 files"


class ProjectLimitReached(Conflict):
    code, title = "project_limit_reached", "Your plan allows no more projects"


class MessageLimitReached(Conflict):
    code, title = "message_limit_reached", "This project's conversation is full"


@dataclass(frozen=True, slots=True)
class Caps:
    """Storage per account: projects by plan (`MAX_PROJECTS_<PLAN>`), messages per project."""

    projects: dict[str, int]
    messages: int

    @classmethod
    def of(cls, settings: Settings) -> "Caps":
        return cls(
            projects={plan: getattr(settings, f"max_projects_{plan}") for plan in PLANS},
            messages=settings.max_messages_per_project,
        )


PLANS = ("free", "pro", "team")


async def insert_counted(
    users: UserRepository,
    projects: ProjectRepository,
    owner: User,
    cap: int,
    name: str,
    description: str,
    files: list[ProjectFile],
    session: Session,
) -> Project:
    """Insert a project if its owner is under the cap (both documents in `session`)."""
    if not await users.take_project_slot(owner.id, cap, session):
        raise ProjectLimitReached(f"The {owner.plan} plan allows {cap} projects")
    return await projects.create(owner.id, name, description, files, session=session)


async def append_counted(
    projects: ProjectRepository,
    messages: MessageRepository,
    owner_id: str,
    project_id: str,
    cap: int,
    entries: list[tuple[str, str]],
    session: Session,
) -> list[Message]:
    """Add messages if the conversation stays within the cap; the oldest are never dropped."""
    taken = await projects.take_message_slots(owner_id, project_id, len(entries), cap, session)
    if taken is None:
        raise NotFound("Project not found")
    if not taken:
        raise MessageLimitReached(f"A project's conversation holds at most {cap} messages")
    return [
        await messages.create(project_id, role, text, session=session) for role, text in entries
    ]


def language_of(path: str) -> str:
    return _LANGUAGES.get(PurePosixPath(path).suffix.lower(), "text")


def project_scope(project_id: str) -> str:
    return f"project:{project_id}"


def owner_scope(owner_id: str) -> str:
    return f"user:{owner_id}"
