"""Projects, their files and conversation: ownership, caps, cached reads with read-your-writes."""

import io
import re
import zipfile

import anyio

from backend.cache import Cache, CacheConfig, cached, cached_json
from backend.db import Mongo
from backend.errors import NotFound
from backend.repositories.base import Session, utcnow
from backend.repositories.messages import Message, MessageRepository
from backend.repositories.projects import Project, ProjectFile, ProjectRepository, WriteResult
from backend.repositories.users import User, UserRepository
from backend.services.project_rules import (
    LIMITS,
    MAX_FILE_BYTES,
    Caps,
    FileTooLarge,
    ProjectTooLarge,
    TooManyFiles,
    append_counted,
    insert_counted,
    language_of,
    owner_scope,
    project_scope,
)
from schemas.common import Page
from schemas.project_schemas import (
    FileWrite,
    MessageCreate,
    ProjectCreate,
    ProjectSummaryRead,
    ProjectUpdate,
)


def _file(data: FileWrite) -> ProjectFile:
    size = len(data.content.encode())
    if size > MAX_FILE_BYTES:
        raise FileTooLarge(f"{data.path} is {size} bytes; the limit is {MAX_FILE_BYTES}")
    return ProjectFile(
        path=data.path,
        content=data.content,
        language=data.language or language_of(data.path),
        size=size,
        updated_at=utcnow(),
    )


def _zip(files: list[ProjectFile]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.writestr(file.path, file.content)
    return buffer.getvalue()


def export_name(name: str) -> str:
    """A file name any browser and file system accept."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:80]
    return f"{safe or 'project'}.zip"


class ProjectService:
    def __init__(
        self,
        *,
        projects: ProjectRepository,
        messages: MessageRepository,
        users: UserRepository,
        mongo: Mongo,
        cache: Cache,
        caps: Caps,
    ) -> None:
        self.projects = projects
        self.messages = messages
        self.users = users
        self.mongo = mongo
        self.cache = cache
        self.caps = caps

    @cached_json(CacheConfig.PROJECT_LIST, scope=lambda owner_id, **_: owner_scope(owner_id))
    async def list(
        self, owner_id: str, page: int, limit: int, sort: str, search: str | None
    ) -> Page[ProjectSummaryRead]:
        """A page of the owner's projects, without file contents, as JSON.

        Cached as the response body itself, so a hit is sent as the bytes Redis holds.
        """
        items, total = await self.projects.page(
            owner_id, page=page, limit=limit, sort=sort, search=search
        )
        summaries = [ProjectSummaryRead.model_validate(item.model_dump()) for item in items]
        return Page[ProjectSummaryRead].of(summaries, page=page, limit=limit, total=total)

    @cached(CacheConfig.PROJECT, scope=lambda project_id, **_: project_scope(project_id))
    async def _find(self, project_id: str, owner_id: str) -> Project | None:
        return await self.projects.get(owner_id, project_id)

    async def get(self, owner_id: str, project_id: str) -> Project:
        """The project with its files; another user's project does not exist."""
        project = await self._find(project_id, owner_id)
        if project is None:
            raise NotFound("Project not found")
        return project

    async def create(self, owner: User, data: ProjectCreate) -> Project:
        files = [_file(file) for file in data.files]
        if len(files) > LIMITS.max_files:
            raise TooManyFiles()
        if sum(file.size for file in files) > LIMITS.max_total_bytes:
            raise ProjectTooLarge()
        cap = self.caps.projects[owner.plan]
        project = await self.mongo.transaction(
            lambda session: insert_counted(
                self.users, self.projects, owner, cap, data.name, data.description, files, session
            )
        )
        await self.cache.invalidate(owner_scope(owner.id))
        return project

    async def update(self, owner_id: str, project_id: str, data: ProjectUpdate) -> Project:
        fields = data.model_dump(exclude_unset=True)
        for required in ("name", "description"):
            if fields.get(required, "") is None:
                del fields[required]  # null means "leave as is" for fields that cannot be empty
        project = await self.projects.update(owner_id, project_id, fields)
        if project is None:
            raise NotFound("Project not found")
        await self._changed(owner_id, project_id)
        return project

    async def delete(self, owner_id: str, project_id: str) -> None:
        async def remove(session: Session) -> None:
            if not await self.projects.delete(owner_id, project_id, session):
                raise NotFound("Project not found")
            await self.users.free_project_slot(owner_id, session)

        await self.mongo.transaction(remove)
        await self.messages.delete_for_project(project_id)
        await self._changed(owner_id, project_id)

    async def put_file(self, owner_id: str, project_id: str, data: FileWrite) -> ProjectFile:
        """Create or replace one file; the caps hold under concurrent writers."""
        file = _file(data)
        result = await self.projects.put_file(owner_id, project_id, file, LIMITS)
        if result is WriteResult.MISSING:
            raise NotFound("Project not found")
        if result is WriteResult.TOO_MANY_FILES:
            raise TooManyFiles()
        if result is WriteResult.TOO_LARGE:
            raise ProjectTooLarge()
        await self._changed(owner_id, project_id)
        return file

    async def delete_file(self, owner_id: str, project_id: str, path: str) -> None:
        if await self.projects.delete_file(owner_id, project_id, path) is WriteResult.MISSING:
            raise NotFound("File not found")
        await self._changed(owner_id, project_id)

    async def list_messages(
        self, owner_id: str, project_id: str, page: int, limit: int
    ) -> Page[Message]:
        await self._require(owner_id, project_id)
        items, total = await self.messages.page(project_id, page=page, limit=limit)
        return Page[Message].of(items, page=page, limit=limit, total=total)

    async def add_message(self, owner_id: str, project_id: str, data: MessageCreate) -> Message:
        """Append to the conversation, within `MAX_MESSAGES_PER_PROJECT`."""
        added = await self.mongo.transaction(
            lambda session: append_counted(
                self.projects,
                self.messages,
                owner_id,
                project_id,
                self.caps.messages,
                [(data.role, data.content)],
                session,
            )
        )
        return added[0]

    async def export_zip(self, owner_id: str, project_id: str) -> tuple[str, bytes]:
        """(file name, zip bytes); compression runs in a worker thread."""
        project = await self.get(owner_id, project_id)
        return export_name(project.name), await anyio.to_thread.run_sync(_zip, project.files)

    async def _require(self, owner_id: str, project_id: str) -> None:
        if not await self.projects.exists(owner_id, project_id):
            raise NotFound("Project not found")

    async def _changed(self, owner_id: str, project_id: str) -> None:
        # Before answering, so the client's next read sees its own write.
        await self.cache.invalidate(owner_scope(owner_id), project_scope(project_id))
