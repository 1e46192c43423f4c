"""`/tasks`: create, list, read, update and delete tasks."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.db import get_session
from app.repositories.task import TaskRepository
from app.schemas.common import ErrorBody, Page, PageMeta
from app.schemas.task import TaskCreate, TaskRead, TaskUpdate
from app.services.task import TaskService

router = APIRouter(prefix="/tasks", tags=["tasks"])
WRITE: list = []
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such task"}}
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def get_service(
    session=Depends(get_session),  # noqa: B008
) -> TaskService:
    return TaskService(TaskRepository(session))


Service = Annotated[TaskService, Depends(get_service)]


@router.get("", response_model=Page[TaskRead])
def list_tasks(
    service: Service,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[TaskRead]:
    """One page of tasks, newest first."""
    items, total = service.list(offset=(page - 1) * limit, limit=limit, q=q)
    meta = PageMeta(page=page, limit=limit, total=total, total_pages=-(-total // limit))
    return Page[TaskRead](data=items, meta=meta)


@router.post("", status_code=201, response_model=TaskRead, dependencies=WRITE)
def create_task(body: TaskCreate, service: Service) -> TaskRead:
    """Create a task."""
    return service.create(body)


@router.get("/{item_id}", response_model=TaskRead, responses=NOT_FOUND)
def read_task(item_id: ItemId, service: Service) -> TaskRead:
    """One task."""
    return service.get(item_id)


@router.patch(
    "/{item_id}", response_model=TaskRead, responses=NOT_FOUND, dependencies=WRITE
)
def update_task(
    item_id: ItemId, body: TaskUpdate, service: Service
) -> TaskRead:
    """Change the fields sent, leave the rest."""
    return service.update(item_id, body)


@router.delete("/{item_id}", status_code=204, responses=NOT_FOUND, dependencies=WRITE)
def delete_task(item_id: ItemId, service: Service) -> Response:
    """Delete a task."""
    service.delete(item_id)
    return Response(status_code=204)
