"""Sign-in with Google and GitHub: state, PKCE and nonce kept server-side, single use."""

import secrets
from datetime import timedelta

import structlog

from backend.errors import AccountDisabled, AppError, BadRequest, Conflict, NotFound
from backend.integrations.oauth import OAuthProvider, ProviderError, ProviderIdentity
from backend.redirects import is_allowed_redirect
from backend.repositories.auth_tokens import (
    OAuthIdentityRepository,
    OAuthState,
    OAuthStateRepository,
)
from backend.repositories.users import User, UserRepository
from backend.security import token_digest
from backend.services.auth import AuthService
from backend.services.users import UserService, user_scope
from schemas.user_schemas import OAuthLogin, UserRead

log = structlog.get_logger("devora.oauth")

STATE_TTL = timedelta(minutes=10)


class UnknownProvider(NotFound):
    code, title = "unknown_provider", "Unknown or unconfigured OAuth provider"


class InvalidRedirectUri(BadRequest):
    code, title = "invalid_redirect_uri", "redirect_uri is not on the allow-list"


class InvalidOAuthState(BadRequest):
    code, title = "invalid_oauth_state", "Unknown, expired or already used OAuth state"


class OAuthProviderError(AppError):
    status, code, title = 502, "oauth_provider_error", "The OAuth provider failed"


class EmailUnverified(Conflict):
    code, title = "email_unverified", "The provider has not verified this email address"


class OAuthService:
    def __init__(
        self,
        *,
        providers: dict[str, OAuthProvider],
        states: OAuthStateRepository,
        identities: OAuthIdentityRepository,
        users: UserRepository,
        user_service: UserService,
        auth: AuthService,
        frontend_origins: list[str],
    ) -> None:
        self.providers = providers
        self.states = states
        self.identities = identities
        self.users = users
        self.user_service = user_service
        self.auth = auth
        self.frontend_origins = frontend_origins

    def provider_names(self) -> list[str]:
        return sorted(self.providers)

    def _provider(self, name: str) -> OAuthProvider:
        provider = self.providers.get(name)
        if provider is None:
            raise UnknownProvider()
        return provider

    async def authorization_url(self, provider_name: str, redirect_uri: str) -> str:
        """Where to send the browser; the state remembers provider, redirect, verifier, nonce."""
        provider = self._provider(provider_name)
        if not is_allowed_redirect(redirect_uri, self.frontend_origins):
            raise InvalidRedirectUri()
        state, verifier, nonce = (secrets.token_urlsafe(32) for _ in range(3))
        try:
            url = await provider.authorization_url(
                redirect_uri=redirect_uri, state=state, code_verifier=verifier, nonce=nonce
            )
        except ProviderError as exc:
            log.warning("oauth_provider_failed", provider=provider_name, error=str(exc))
            raise OAuthProviderError() from exc
        await self.states.create(
            token_digest(state),
            OAuthState(
                provider=provider_name,
                redirect_uri=redirect_uri,
                code_verifier=verifier,
                nonce=nonce,
            ),
            STATE_TTL,
        )
        return url

    async def callback(self, provider_name: str, code: str, state: str) -> OAuthLogin:
        """Exchange the code, find or create the user, and sign them in."""
        provider = self._provider(provider_name)
        stored = await self.states.take(token_digest(state))
        if stored is None or stored.provider != provider_name:
            raise InvalidOAuthState()
        try:
            identity = await provider.identity(
                code=code,
                redirect_uri=stored.redirect_uri,
                code_verifier=stored.code_verifier,
                nonce=stored.nonce,
            )
        except ProviderError as exc:
            log.warning("oauth_provider_failed", provider=provider_name, error=str(exc))
            raise OAuthProviderError() from exc
        user, is_new = await self._user_for(provider_name, identity)
        if not user.is_active:
            raise AccountDisabled()
        tokens = await self.auth.issue_tokens(user)
        return OAuthLogin(
            **tokens.model_dump(),
            user=UserRead.model_validate(user.model_dump()),
            is_new_user=is_new,
        )

    async def _user_for(self, provider: str, identity: ProviderIdentity) -> tuple[User, bool]:
        linked_id = await self.identities.user_id_for(provider, identity.subject)
        if linked_id is not None:
            user = await self.users.get(linked_id)
            if user is not None:
                return user, False
        if not identity.email:
            raise OAuthProviderError("The provider returned no email address")
        existing = await self.users.get_by_email(identity.email)
        if existing is not None:
            # Only a provider-verified address may take over an existing account.
            if not identity.email_verified:
                raise EmailUnverified()
            if not existing.is_verified:
                # Nobody proved this address before: whoever registered it (perhaps to wait
                # for its owner) loses the password they set, every session and every
                # unproven link; the owner, proven now, keeps the account.
                await self.auth.credentials.replace(existing.id, None, drop_links="unverified")
                log.warning("oauth_claimed_unverified_account", user_id=existing.id)
            await self.identities.link(provider, identity.subject, existing.id, email_verified=True)
            linked = await self.users.add_oauth_provider(existing.id, provider, verified=True)
            await self.user_service.cache.invalidate(user_scope(existing.id))
            assert linked is not None
            return linked, False
        user = await self.users.create(
            email=identity.email,
            password_hash=None,
            full_name=identity.name,
            is_verified=identity.email_verified,
            oauth_provider=provider,
        )
        await self.identities.link(
            provider, identity.subject, user.id, email_verified=identity.email_verified
        )
        return user, True
