"""Reading and changing users; the USER cache lives here."""

from typing import Any

from backend.cache import Cache, CacheConfig, cached
from backend.repositories.users import User, UserRepository
from backend.security import PasswordHasher


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

    async def ensure_admin(self, email: str, password: str, hasher: PasswordHasher) -> User:
        """Create the admin, or promote the existing account; safe to run at every start."""
        existing = await self.users.get_by_email(email)
        if existing is None:
            user = await self.users.create(
                email=email,
                password_hash=await hasher.hash(password),
                full_name="Administrator",
                is_verified=True,
                role="admin",
            )
            return user
        promoted = await self.update(
            existing.id, {"role": "admin", "is_active": True, "is_verified": True}
        )
        assert promoted is not None
        return promoted
