"""Accounts and credentials: register, login, rotating refresh tokens, password and email flows."""

import uuid
from datetime import timedelta

import structlog

from backend.config import Settings
from backend.errors import AccountDisabled, BadRequest, Unauthorized
from backend.integrations.email import Mail, Mailer
from backend.repositories.auth_tokens import (
    ActionTokenRepository,
    Purpose,
    RefreshTokenRepository,
)
from backend.repositories.users import User, UserRepository
from backend.security import PasswordHasher, TokenSigner, new_opaque_token, token_digest
from backend.services.credentials import Credentials
from backend.services.users import UserService
from schemas.user_schemas import Tokens

log = structlog.get_logger("devora.auth")


class InvalidCredentials(Unauthorized):
    code, title = "invalid_credentials", "Invalid email or password"


class InvalidActionToken(BadRequest):
    code, title = "invalid_token", "The token is invalid, expired or already used"


class InvalidPassword(BadRequest):
    code, title = "invalid_password", "The current password is wrong"


class TokenReused(Unauthorized):
    code, title = "token_reused", "Refresh token already used; every session of it was ended"


class InvalidRefreshToken(Unauthorized):
    code, title = "invalid_token", "The refresh token is invalid or expired"


class AuthService:
    def __init__(
        self,
        *,
        users: UserRepository,
        user_service: UserService,
        refresh_tokens: RefreshTokenRepository,
        action_tokens: ActionTokenRepository,
        credentials: Credentials,
        hasher: PasswordHasher,
        signer: TokenSigner,
        mailer: Mailer,
        settings: Settings,
    ) -> None:
        self.users = users
        self.user_service = user_service
        self.refresh_tokens = refresh_tokens
        self.action_tokens = action_tokens
        self.credentials = credentials
        self.hasher = hasher
        self.signer = signer
        self.mailer = mailer
        self.settings = settings

    async def register(self, email: str, password: str, full_name: str | None) -> User:
        """Create an account and mail a verification link."""
        user = await self.users.create(
            email=email, password_hash=await self.hasher.hash(password), full_name=full_name
        )
        await self._mail_verification(user)
        return user

    async def login(self, email: str, password: str) -> Tokens:
        """Tokens for the right password; the same answer for a wrong one or an unknown email."""
        found = await self.users.get_credentials(email)
        matches, new_hash = await self.hasher.verify(password, found[1] if found else None)
        if found is None or not matches:
            raise InvalidCredentials()
        user = found[0]
        if not user.is_active:
            raise AccountDisabled()
        if new_hash:  # an old bcrypt hash: store argon2id from now on
            await self.users.set_password(user.id, new_hash)
        return await self.issue_tokens(user)

    async def issue_tokens(self, user: User, family_id: str | None = None) -> Tokens:
        """A new access token and a refresh token in `family_id` (a new login when None)."""
        refresh = new_opaque_token()
        await self.refresh_tokens.create(
            token_digest(refresh),
            user.id,
            family_id or uuid.uuid4().hex,
            user.token_version,
            timedelta(days=self.settings.refresh_token_ttl_days),
        )
        return Tokens(
            access_token=self.signer.issue(user.id, user.token_version),
            refresh_token=refresh,
            expires_in=self.signer.ttl_s,
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate: the presented token is spent; presenting a spent one ends its whole login."""
        digest = token_digest(refresh_token)
        spent = await self.refresh_tokens.spend(digest)
        if spent is None:
            known = await self.refresh_tokens.find(digest)
            if known is not None and known.used_at is not None:
                await self.refresh_tokens.revoke_family(known.family_id)
                log.warning("refresh_token_reused", user_id=known.user_id)
                raise TokenReused()
            raise InvalidRefreshToken()
        user = await self.users.get(spent.user_id)  # fresh, never cached: the version matters
        # A token issued before the user's sessions were ended — even one a refresh created
        # while a password change ran — is refused: its version is older than the user's.
        if user is None:
            raise InvalidRefreshToken()
        if not user.is_active:
            raise AccountDisabled()
        if user.token_version != spent.token_version:
            raise InvalidRefreshToken()
        return await self.issue_tokens(user, spent.family_id)

    async def logout(self, refresh_token: str) -> None:
        """End the login the token belongs to; unknown tokens are ignored."""
        known = await self.refresh_tokens.find(token_digest(refresh_token))
        if known is not None:
            await self.refresh_tokens.revoke_family(known.family_id)

    async def change_password(self, user: User, current: str, new: str) -> None:
        """Check the current password, store the new one, end every session."""
        stored = await self.users.get_password_hash(user.id)
        matches, _ = await self.hasher.verify(current, stored)
        if not matches:
            raise InvalidPassword()
        await self.credentials.replace(user.id, await self.hasher.hash(new))

    async def forgot_password(self, email: str) -> None:
        """Mail a single-use reset link if the account exists; the caller learns nothing.

        Even the lookup runs after the answer, so a known and an unknown address cost the
        caller the same time."""
        self.mailer.after_response(lambda: self._mail_reset(email))

    async def _mail_reset(self, email: str) -> None:
        user = await self.users.get_by_email(email)
        if user is None or not user.is_active:
            return
        token = await self._action_token(user.id, "reset_password", self.settings.reset_token_ttl_s)
        link = f"{self.settings.public_app_url}/reset-password?token={token}"
        self.mailer.send_later(
            Mail(
                to=user.email,
                subject="Reset your Devora password",
                body=f"Reset your password within an hour: {link}\n\nToken: {token}\n",
            )
        )

    async def reset_password(self, token: str, new_password: str) -> None:
        """Set a new password with a reset token, which then stops working.

        The token proves the mailbox: the address counts as verified from now on, and OAuth
        links whose provider never verified this address end with every other session."""
        user_id = await self.action_tokens.consume(token_digest(token), "reset_password")
        if user_id is None:
            raise InvalidActionToken()
        await self.credentials.replace(
            user_id,
            await self.hasher.hash(new_password),
            drop_links="unverified",
            fields={"is_verified": True},
        )

    async def request_verification(self, user: User) -> None:
        """Mail a fresh verification link."""
        await self._mail_verification(user)

    async def verify_email(self, token: str) -> User:
        user_id = await self.action_tokens.consume(token_digest(token), "verify_email")
        if user_id is None:
            raise InvalidActionToken()
        user = await self.user_service.update(user_id, {"is_verified": True})
        if user is None:
            raise InvalidActionToken()
        return user

    async def _action_token(self, user_id: str, purpose: Purpose, ttl_s: int) -> str:
        token = new_opaque_token()
        await self.action_tokens.create(
            token_digest(token), user_id, purpose, timedelta(seconds=ttl_s)
        )
        return token

    async def _mail_verification(self, user: User) -> None:
        token = await self._action_token(user.id, "verify_email", self.settings.verify_token_ttl_s)
        link = f"{self.settings.public_app_url}/verify-email?token={token}"
        self.mailer.send_later(
            Mail(
                to=user.email,
                subject="Confirm your Devora email address",
                body=f"Confirm your address: {link}\n\nToken: {token}\n",
            )
        )
