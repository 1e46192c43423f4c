"""Every table, imported so that `Base.metadata` knows them all."""

from app.models.task import Task

__all__ = ['Task']
