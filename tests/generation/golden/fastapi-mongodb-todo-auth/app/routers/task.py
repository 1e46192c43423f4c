"""`/tasks`: create, list, read, update and delete tasks."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth import require_user
from app.db import get_db
from app.repositories.task import TaskRepository
from app.schemas.common import ErrorBody
from app.schemas.task import TaskCreate, TaskRead, TaskUpdate
from app.services.task import TaskService

router = APIRouter(prefix="/tasks", tags=["tasks"])
WRITE = [Depends(require_user)]
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such task"}}
ItemId = Annotated[str, Path(max_length=64)]


def get_service(
    db=Depends(get_db),  # noqa: B008
) -> TaskService:
    return TaskService(TaskRepository(db))


Service = Annotated[TaskService, Depends(get_service)]


@router.get("", response_model=list[TaskRead])
def list_tasks(
    service: Service, q: Annotated[str | None, Query(max_length=200)] = None
) -> list[TaskRead]:
    """The newest 100 tasks; `q` searches text fields."""
    items, _ = service.list(offset=0, limit=100, q=q)
    return items


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
    """Delete a task (kept, hidden from reads)."""
    service.delete(item_id)
    return Response(status_code=204)
