"""Task: the rules between the HTTP layer and the repository."""

from typing import Any

from app.errors import NotFound
from app.repositories.task import TaskRepository
from app.schemas.task import TaskCreate, TaskRead, TaskUpdate

ItemId = str


class TaskService:
    def __init__(self, repository: TaskRepository) -> None:
        self.repository = repository

    def list(
        self, *, offset: int, limit: int, q: str | None = None
    ) -> tuple[list[TaskRead], int]:
        """Tasks newest first, and how many match in all."""
        items, total = self.repository.list(offset=offset, limit=limit, q=q)
        return [TaskRead.model_validate(item) for item in items], total

    def _find(self, item_id: ItemId) -> Any:
        item = self.repository.get(item_id)
        if item is None:
            raise NotFound("No task with this id")
        return item

    def get(self, item_id: ItemId) -> TaskRead:
        return TaskRead.model_validate(self._find(item_id))

    def create(self, data: TaskCreate) -> TaskRead:
        return TaskRead.model_validate(self.repository.create(data.model_dump()))

    def update(self, item_id: ItemId, data: TaskUpdate) -> TaskRead:
        changes = data.model_dump(exclude_unset=True)
        item = self.repository.update(item_id, changes)
        if item is None:
            raise NotFound("No task with this id")
        return TaskRead.model_validate(item)

    def delete(self, item_id: ItemId) -> None:
        if not self.repository.delete(item_id):
            raise NotFound("No task with this id")
