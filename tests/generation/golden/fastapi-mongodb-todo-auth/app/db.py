"""The MongoDB client; collections are reached through repositories."""

from typing import Annotated

from fastapi import Depends, Request
from pymongo import MongoClient
from pymongo.database import Database as MongoDatabase


class Database:
    def __init__(self, url: str, name: str) -> None:
        self.client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=True)
        self.db: MongoDatabase = self.client[name]

    def create_indexes(self) -> None:
        """Every collection's indexes (`app.models.INDEXES`); idempotent, run at startup."""
        from app.models import INDEXES

        for collection, indexes in INDEXES.items():
            if indexes:
                self.db[collection].create_indexes(indexes)

    def close(self) -> None:
        self.client.close()


def get_db(request: Request) -> MongoDatabase:
    return request.app.state.database.db


Db = Annotated[MongoDatabase, Depends(get_db)]
