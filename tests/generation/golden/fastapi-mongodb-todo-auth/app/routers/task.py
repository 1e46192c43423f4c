"""`/tasks`: create, list, read, update and delete tasks (each account its own)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth import CurrentUser
from app.db import Db
from app.repositories.task import TaskRepository
from app.schemas.common import LIST_CAP, NOT_FOUND
from app.schemas.task import TaskCreate, TaskRead, TaskUpdate
from app.services.task import TaskService

router = APIRouter(prefix="/tasks", tags=["tasks"])
# A malformed id is a 422 (validation_error); a well-formed one naming nothing visible is a 404.
ItemId = Annotated[str, Path(pattern="^[0-9a-fA-F]{24}$")]
Search = Annotated[str | None, Query(min_length=1, max_length=200)]


def get_service(db: Db, user: CurrentUser) -> TaskService:
    return TaskService(TaskRepository(db, owner_id=user.id))


Service = Annotated[TaskService, Depends(get_service)]


@router.get("", response_model=list[TaskRead])
def list_tasks(
    service: Service, response: Response, q: Search = None
) -> list[TaskRead]:
    """Every task, newest first (at most LIST_CAP); `X-Total-Count` counts them all."""
    items, total = service.list(offset=0, limit=LIST_CAP, q=q)
    response.headers["X-Total-Count"] = str(total)
    return items


@router.post("", status_code=201, response_model=TaskRead)
def create_task(body: TaskCreate, service: Service) -> TaskRead:
    """Create a task owned by the caller."""
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
    """Delete a task (kept, hidden from reads)."""
    service.delete(item_id)
    return Response(status_code=204)
