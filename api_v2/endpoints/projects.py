"""`/api/v2/projects`: projects, their files and conversation, all scoped to the caller."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from api_v2.deps import CurrentUser, Pagination, ProjectServiceDep
from api_v2.rate_limits import DEFAULT_LIMIT
from api_v2.routing import DocumentedRoute, JSONBytes, problems
from backend.errors import NotFound, Unauthorized
from backend.repositories.messages import Message
from backend.repositories.projects import Project, ProjectFile
from backend.services.project_rules import (
    FileTooLarge,
    MessageLimitReached,
    ProjectLimitReached,
    ProjectTooLarge,
    TooManyFiles,
)
from schemas.common import Page, ResourceId
from schemas.project_schemas import (
    FilePath,
    FileRead,
    FileWrite,
    MessageCreate,
    MessageRead,
    ProjectCreate,
    ProjectRead,
    ProjectSort,
    ProjectSummaryRead,
    ProjectUpdate,
)

router = APIRouter(
    prefix="/projects",
    tags=["projects"],
    route_class=DocumentedRoute,
    dependencies=[DEFAULT_LIMIT],
    responses=problems(Unauthorized),
)
ZIP_CHUNK = 64 * 1024


def _etag(project: Project) -> str:
    return f'"{project.id}.{project.version}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.get("", response_model=Page[ProjectSummaryRead])
async def list_projects(
    user: CurrentUser,
    projects: ProjectServiceDep,
    paging: Pagination,
    sort: ProjectSort = "-updated_at",
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Your projects, newest change first.

    `search` matches name and description as plain text (no patterns).
    """
    page = await projects.list(user.id, paging.page, paging.limit, sort, search or None)
    return JSONBytes(page)


@router.post(
    "",
    status_code=201,
    response_model=ProjectRead,
    responses=problems(FileTooLarge, ProjectTooLarge, TooManyFiles, ProjectLimitReached),
)
async def create_project(
    body: ProjectCreate, user: CurrentUser, projects: ProjectServiceDep
) -> Project:
    """Create a project, optionally with files."""
    return await projects.create(user, body)


@router.get(
    "/{project_id}",
    response_model=ProjectRead,
    responses={**problems(NotFound), 304: {"description": "Not modified (`If-None-Match`)"}},
)
async def get_project(
    project_id: ResourceId,
    user: CurrentUser,
    projects: ProjectServiceDep,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Project | Response:
    """One project with its files.

    The answer carries an `ETag`; sending it back in `If-None-Match` answers `304` with no body
    while the project is unchanged.
    """
    project = await projects.get(user.id, project_id)
    etag = _etag(project)
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return project


@router.patch("/{project_id}", response_model=ProjectRead, responses=problems(NotFound))
async def update_project(
    project_id: ResourceId, body: ProjectUpdate, user: CurrentUser, projects: ProjectServiceDep
) -> Project:
    """Rename, describe, or link a repository or deployment."""
    return await projects.update(user.id, project_id, body)


@router.delete("/{project_id}", status_code=204, responses=problems(NotFound))
async def delete_project(
    project_id: ResourceId, user: CurrentUser, projects: ProjectServiceDep
) -> Response:
    """Delete a project with its files and conversation."""
    await projects.delete(user.id, project_id)
    return Response(status_code=204)


@router.put(
    "/{project_id}/files",
    response_model=FileRead,
    responses=problems(NotFound, FileTooLarge, ProjectTooLarge, TooManyFiles),
)
async def put_file(
    project_id: ResourceId, body: FileWrite, user: CurrentUser, projects: ProjectServiceDep
) -> ProjectFile:
    """Create or replace one file of a project."""
    return await projects.put_file(user.id, project_id, body)


@router.delete("/{project_id}/files", status_code=204, responses=problems(NotFound))
async def delete_file(
    project_id: ResourceId,
    path: Annotated[FilePath, Query()],
    user: CurrentUser,
    projects: ProjectServiceDep,
) -> Response:
    """Delete one file of a project."""
    await projects.delete_file(user.id, project_id, path)
    return Response(status_code=204)


@router.get(
    "/{project_id}/messages", response_model=Page[MessageRead], responses=problems(NotFound)
)
async def list_messages(
    project_id: ResourceId, user: CurrentUser, projects: ProjectServiceDep, paging: Pagination
) -> Page[Message]:
    """The project's conversation, oldest first."""
    return await projects.list_messages(user.id, project_id, paging.page, paging.limit)


@router.post(
    "/{project_id}/messages",
    status_code=201,
    response_model=MessageRead,
    responses=problems(NotFound, MessageLimitReached),
)
async def add_message(
    project_id: ResourceId, body: MessageCreate, user: CurrentUser, projects: ProjectServiceDep
) -> Message:
    """Add a message to the project's conversation."""
    return await projects.add_message(user.id, project_id, body)


@router.get(
    "/{project_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The files as a zip"},
        **problems(NotFound),
    },
)
async def export_project(
    project_id: ResourceId, user: CurrentUser, projects: ProjectServiceDep
) -> StreamingResponse:
    """Download the project's files as a zip."""
    filename, archive = await projects.export_zip(user.id, project_id)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(archive), ZIP_CHUNK):
            yield archive[start : start + ZIP_CHUNK]

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(len(archive)),
        },
    )
