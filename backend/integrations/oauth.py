"""OAuth providers through Authlib's async OAuth2 client: Google (OpenID Connect) and GitHub.

Each provider turns an authorization code into a verified identity. State, PKCE verifier and
nonce are generated and stored by the caller (the auth service); here they are only used.
"""

import asyncio
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import httpx2
from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():
    # Authlib uses the `httpx2` fork when it is installed (the openai SDK brings it) and
    # warns when it falls back to httpx; either way its errors are caught below.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from backend.config import Settings
from schemas.user_schemas import canonical_email


class ProviderError(Exception):
    """The provider failed, refused the code, or answered something we cannot trust."""


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


class OAuthProvider(Protocol):
    name: str

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str
    ) -> str: ...

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> ProviderIdentity: ...

    async def aclose(self) -> None: ...


_NETWORK_ERRORS = (
    httpx.HTTPError,
    httpx2.HTTPError,
    OAuthError,
    JoseError,
    ValueError,
    KeyError,
    TypeError,
)


class GoogleProvider:
    """OpenID Connect: endpoints from discovery, id_token checked against the JWKS and nonce."""

    name = "google"

    def __init__(self, settings: Settings) -> None:
        assert settings.oauth_google_client_id and settings.oauth_google_client_secret
        self.issuer = settings.oauth_google_issuer.rstrip("/")
        self.client_id = settings.oauth_google_client_id
        self.client = AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=settings.oauth_google_client_secret.get_secret_value(),
            scope="openid email profile",
            code_challenge_method="S256",
            timeout=settings.http_timeout_s,
        )
        self._metadata: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def _discover(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None:
                response = await self.client.request(
                    "GET", f"{self.issuer}/.well-known/openid-configuration", withhold_token=True
                )
                response.raise_for_status()
                self._metadata = response.json()
        return self._metadata

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str
    ) -> str:
        try:
            metadata = await self._discover()
        except _NETWORK_ERRORS as exc:
            raise ProviderError(f"discovery failed: {exc!r}") from exc
        url, _ = self.client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=state,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            nonce=nonce,
        )
        return str(url)

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> ProviderIdentity:
        try:
            metadata = await self._discover()
            token = await self.client.fetch_token(
                metadata["token_endpoint"],
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
            )
            jwks_response = await self.client.request(
                "GET", metadata["jwks_uri"], withhold_token=True
            )
            jwks_response.raise_for_status()
            jwks = jwks_response.json()
            claims = self._verify_id_token(token["id_token"], KeySet.import_key_set(jwks), nonce)
            profile = await self._userinfo(metadata["userinfo_endpoint"], token["access_token"])
        except _NETWORK_ERRORS as exc:
            raise ProviderError(f"token exchange failed: {exc!r}") from exc
        if profile.get("sub") != claims["sub"]:
            raise ProviderError("userinfo is about another subject than the id_token")
        email = claims.get("email") or profile.get("email")
        return ProviderIdentity(
            subject=str(claims["sub"]),
            email=canonical_email(str(email)) if email else None,
            # Only the signed id_token may vouch for the address.
            email_verified=bool(claims.get("email")) and claims.get("email_verified") is True,
            name=profile.get("name") or claims.get("name"),
        )

    async def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        response = await self.client.request(
            "GET", url, headers={"Authorization": f"Bearer {access_token}"}, withhold_token=True
        )
        response.raise_for_status()
        profile = response.json()
        if not isinstance(profile, dict):
            raise ValueError("userinfo is not an object")
        return profile

    def _verify_id_token(self, id_token: str, keys: KeySet, nonce: str) -> dict[str, Any]:
        decoded = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(decoded.claims)
        return decoded.claims

    async def aclose(self) -> None:
        await self.client.aclose()


class GitHubProvider:
    """OAuth2; the identity is `/user`, the email the primary verified one of `/user/emails`."""

    name = "github"

    def __init__(self, settings: Settings) -> None:
        assert settings.oauth_github_client_id and settings.oauth_github_client_secret
        self.authorize_url = settings.oauth_github_authorize_url
        self.token_url = settings.oauth_github_token_url
        self.api_url = settings.oauth_github_api_url.rstrip("/")
        self.client = AsyncOAuth2Client(
            client_id=settings.oauth_github_client_id,
            client_secret=settings.oauth_github_client_secret.get_secret_value(),
            scope="read:user user:email",
            code_challenge_method="S256",
            timeout=settings.http_timeout_s,
        )

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str
    ) -> str:
        url, _ = self.client.create_authorization_url(
            self.authorize_url, state=state, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        return str(url)

    async def identity(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> ProviderIdentity:
        try:
            token = await self.client.fetch_token(
                self.token_url,
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                headers={"Accept": "application/json"},
            )
            headers = {
                "Authorization": f"Bearer {token['access_token']}",
                "Accept": "application/vnd.github+json",
            }
            user_response, emails_response = await asyncio.gather(
                self.client.request(
                    "GET", f"{self.api_url}/user", headers=headers, withhold_token=True
                ),
                self.client.request(
                    "GET", f"{self.api_url}/user/emails", headers=headers, withhold_token=True
                ),
            )
            user_response.raise_for_status()
            emails_response.raise_for_status()
            user, emails = user_response.json(), emails_response.json()
        except _NETWORK_ERRORS as exc:
            raise ProviderError(f"token exchange failed: {exc!r}") from exc
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("verified")),
            None,
        )
        return ProviderIdentity(
            subject=str(user["id"]),
            email=canonical_email(str(primary["email"])) if primary else None,
            email_verified=primary is not None,
            name=user.get("name") or user.get("login"),
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def configured_providers(settings: Settings) -> dict[str, OAuthProvider]:
    """The providers whose client id and secret are set."""
    providers: dict[str, OAuthProvider] = {}
    if settings.oauth_google_client_id and settings.oauth_google_client_secret:
        providers["google"] = GoogleProvider(settings)
    if settings.oauth_github_client_id and settings.oauth_github_client_secret:
        providers["github"] = GitHubProvider(settings)
    return providers
