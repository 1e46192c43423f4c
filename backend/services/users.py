"""Reading and changing users; the USER cache lives here."""

from typing import Any

from backend.cache import Cache, CacheConfig, cached
from backend.repositories.users import User, UserRepository


def user_scope(user_id: str) -> str:
    return f"account:{user_id}"


class UserService:
    def __init__(self, users: UserRepository, cache: Cache) -> None:
        self.users = users
        self.cache = cache

    @cached(CacheConfig.USER, scope=lambda user_id: user_scope(user_id))
    async def get(self, user_id: str) -> User | None:
        """The user by id, through the cache (every authenticated request asks)."""
        return await self.users.get(user_id)

    async def update(self, user_id: str, fields: dict[str, Any]) -> User | None:
        """Change fields and drop the cached copy before answering."""
        user = await self.users.update(user_id, fields)
        await self.cache.invalidate(user_scope(user_id))
        return user
