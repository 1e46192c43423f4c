"""Reading and changing users; the USER cache lives here."""

from typing import Any

from backend.cache import Cache, CacheConfig, cached
from backend.repositories.users import User, UserRepository
from backend.services.project_rules import owner_scope


def user_scope(user_id: str) -> str:
    return f"account:{user_id}"


def signed_in_prefetch(user_id: str) -> dict[str, str | None]:
    """What a signed-in request reads from the cache, fetched with its rate-limit count: the
    user record (every such request checks it) and the version of the user's own projects."""
    scope, stem = UserService.get.cached_call.stem(user_id=user_id)  # type: ignore[attr-defined]
    return {scope: stem, owner_scope(user_id): None}


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
