"""`/tasks`: create, list, read, update and delete tasks."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.db import DbSession
from app.repositories.task import TaskRepository
from app.schemas.common import NOT_FOUND, Page, PageMeta
from app.schemas.task import TaskCreate, TaskRead, TaskUpdate
from app.services.task import TaskService

router = APIRouter(prefix="/tasks", tags=["tasks"])
# An id out of the id column's range is a 422 (validation_error), as a malformed one is.
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def get_service(session: DbSession) -> TaskService:
    return TaskService(TaskRepository(session))


Service = Annotated[TaskService, Depends(get_service)]


@router.get("", response_model=Page[TaskRead])
def list_tasks(
    service: Service,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[TaskRead]:
    """One page of tasks, newest first."""
    items, total = service.list(offset=(page - 1) * limit, limit=limit)
    meta = PageMeta(page=page, limit=limit, total=total, total_pages=-(-total // limit))
    return Page[TaskRead](data=items, meta=meta)


@router.post("", status_code=201, response_model=TaskRead)
def create_task(body: TaskCreate, service: Service) -> TaskRead:
    """Create a task."""
    return service.create(body)


@router.get("/{item_id}", response_model=TaskRead, responses=NOT_FOUND)
def read_task(item_id: ItemId, service: Service) -> TaskRead:
    """One task."""
    return service.get(item_id)


@router.patch("/{item_id}", response_model=TaskRead, responses=NOT_FOUND)
def update_task(
    item_id: ItemId, body: TaskUpdate, service: Service
) -> TaskRead:
    """Change the fields sent, leave the rest."""
    return service.update(item_id, body)


@router.delete("/{item_id}", status_code=204, responses=NOT_FOUND)
def delete_task(item_id: ItemId, service: Service) -> Response:
    """Delete a task."""
    service.delete(item_id)
    return Response(status_code=204)
