"""The MongoDB client; collections are reached through repositories."""

from collections.abc import Iterator

from fastapi import Request
from pymongo import MongoClient
from pymongo.database import Database as MongoDatabase


class Database:
    def __init__(self, url: str, name: str) -> None:
        self.client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=True)
        self.db: MongoDatabase = self.client[name]

    def create_indexes(self) -> None:
        from app.models import INDEXES

        for collection, indexes in INDEXES.items():
            if indexes:
                self.db[collection].create_indexes(indexes)

    def close(self) -> None:
        self.client.close()


def get_db(request: Request) -> Iterator[MongoDatabase]:
    yield request.app.state.database.db
