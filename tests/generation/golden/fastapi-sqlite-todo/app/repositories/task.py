"""`tasks` rows: queries and storage types."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.task import Task

_AS_TEXT = []


class TaskRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _visible(self, statement: Any) -> Any:
        return statement

    def list(
        self, *, offset: int, limit: int, q: str | None = None
    ) -> tuple[list[Task], int]:
        query = self._visible(select(Task))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(
            query.order_by(Task.id.desc()).offset(offset).limit(limit)
        )
        return list(rows), total

    def get(self, item_id: int) -> Task | None:
        query = select(Task).where(Task.id == item_id)
        return self.session.scalar(self._visible(query))

    def create(self, values: dict[str, Any]) -> Task:
        item = Task(**_storable(values))
        self.session.add(item)
        self.session.commit()
        return item

    def update(self, item: Task, values: dict[str, Any]) -> Task:
        for key, value in _storable(values).items():
            setattr(item, key, value)
        self.session.commit()
        return item

    def delete(self, item: Task) -> None:
        self.session.delete(item)
        self.session.commit()


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if k in _AS_TEXT and v is not None else v for k, v in values.items()}
