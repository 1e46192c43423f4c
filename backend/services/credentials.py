"""Who may sign in to an account: replacing its password, ending its sessions, dropping the
OAuth links nobody proved, and the operator's admin account."""

from typing import Any, Literal

from backend.cache import Cache
from backend.repositories.auth_tokens import (
    ActionTokenRepository,
    OAuthIdentityRepository,
    RefreshTokenRepository,
)
from backend.repositories.users import User, UserRepository
from backend.security import PasswordHasher
from backend.services.users import user_scope

# Which OAuth links go along with the old credentials.
DropLinks = Literal["none", "unverified", "all"]


class Credentials:
    @classmethod
    def on(cls, db: Any, cache: Cache) -> "Credentials":
        """Over the collections of `db`."""
        return cls(
            users=UserRepository(db),
            refresh_tokens=RefreshTokenRepository(db),
            action_tokens=ActionTokenRepository(db),
            identities=OAuthIdentityRepository(db),
            cache=cache,
        )

    def __init__(
        self,
        *,
        users: UserRepository,
        refresh_tokens: RefreshTokenRepository,
        action_tokens: ActionTokenRepository,
        identities: OAuthIdentityRepository,
        cache: Cache,
    ) -> None:
        self.users = users
        self.refresh_tokens = refresh_tokens
        self.action_tokens = action_tokens
        self.identities = identities
        self.cache = cache

    async def replace(
        self,
        user_id: str,
        password_hash: str | None,
        *,
        drop_links: DropLinks = "none",
        fields: dict[str, Any] | None = None,
    ) -> User | None:
        """Set the password (None removes it) and end every session of the account: access
        tokens by their version, refresh tokens revoked, outstanding reset links spent."""
        fields = dict(fields or {})
        if drop_links != "none":
            # First, so no link that is about to go can sign in after the sessions end.
            fields["oauth_providers"] = await self.identities.unlink(
                user_id, unverified_only=drop_links == "unverified"
            )
        user = await self.users.replace_credentials(user_id, password_hash, fields)
        await self.refresh_tokens.revoke_user(user_id)
        await self.action_tokens.expire_all(user_id, "reset_password")
        await self.cache.invalidate(user_scope(user_id))
        return user

    async def ensure_admin(self, email: str, password: str, hasher: PasswordHasher) -> User:
        """The operator's admin account, with the operator's password; safe at every start.

        An existing account that is not an admin yet gets admin rights only together with the
        operator's password: its own password, every session and every OAuth link end, since
        whoever registered it (perhaps before the operator) must not sign in as an admin.
        """
        existing = await self.users.get_by_email(email)
        if existing is None:
            return await self.users.create(
                email=email,
                password_hash=await hasher.hash(password),
                full_name="Administrator",
                is_verified=True,
                role="admin",
            )
        if existing.role == "admin":
            return existing  # already the operator's: a restart must not end their sessions
        promoted = await self.replace(
            existing.id,
            await hasher.hash(password),
            drop_links="all",
            fields={"role": "admin", "is_active": True, "is_verified": True},
        )
        assert promoted is not None
        return promoted
