"""`/api/v2/auth`: accounts, tokens, password and email flows, OAuth sign-in."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from api_v2.deps import (
    AuthServiceDep,
    CurrentUser,
    DeferredAuthServiceDep,
    OAuthServiceDep,
    UserServiceDep,
)
from api_v2.rate_limits import DEFAULT_LIMIT, RateLimits, count_for_account, rate_limit
from api_v2.routing import DocumentedRoute, problems
from backend.errors import AccountDisabled, EmailTaken, Unauthorized
from backend.repositories.users import User
from backend.services.auth import (
    InvalidActionToken,
    InvalidCredentials,
    InvalidPassword,
    InvalidRefreshToken,
    TokenReused,
)
from backend.services.oauth import (
    EmailUnverified,
    InvalidOAuthState,
    InvalidRedirectUri,
    OAuthProviderError,
    UnknownProvider,
)
from schemas.user_schemas import (
    AuthorizationUrl,
    LoginRequest,
    OAuthCallback,
    OAuthLogin,
    OAuthProviders,
    PasswordChange,
    PasswordForgot,
    PasswordReset,
    RefreshRequest,
    Tokens,
    UserCreate,
    UserRead,
    UserUpdate,
    VerifyRequest,
    canonical_email,
)

router = APIRouter(prefix="/auth", tags=["auth"], route_class=DocumentedRoute)


async def _login_account(request: Request, body: LoginRequest) -> None:
    await count_for_account(request, RateLimits.AUTH_LOGIN, body.email)


async def _swagger_login_account(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> None:
    await count_for_account(request, RateLimits.AUTH_LOGIN, canonical_email(form.username))


async def _reset_account(request: Request, body: PasswordForgot) -> None:
    await count_for_account(request, RateLimits.AUTH_PASSWORD_FORGOT, body.email)


async def _no_store(response: Response) -> None:
    """Token responses are never cached by a browser or proxy (RFC 6749 §5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NO_STORE = Depends(_no_store)
LOGIN_LIMIT = rate_limit(RateLimits.AUTH_LOGIN, per_ip=True, per_account=True)


@router.post(
    "/register",
    status_code=201,
    response_model=UserRead,
    responses=problems(EmailTaken),
    dependencies=[rate_limit(RateLimits.AUTH_REGISTER, per_ip=True)],
)
async def register_account(body: UserCreate, auth: AuthServiceDep) -> User:
    """Create an account and mail a verification link.

    The email is normalised to lower case; an address in use answers `409 email_taken`.
    """
    return await auth.register(body.email, body.password, body.full_name)


@router.post(
    "/login",
    response_model=Tokens,
    responses=problems(InvalidCredentials, AccountDisabled),
    dependencies=[LOGIN_LIMIT, Depends(_login_account), NO_STORE],
)
async def login_account(body: LoginRequest, auth: AuthServiceDep) -> Tokens:
    """Sign in with email and password."""
    return await auth.login(body.email, body.password)


@router.post(
    "/token",
    response_model=Tokens,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {"username": "ada@example.com", "password": "Correct-Horse-9"}
                }
            }
        }
    },
    responses=problems(InvalidCredentials, AccountDisabled),
    dependencies=[LOGIN_LIMIT, Depends(_swagger_login_account), NO_STORE],
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], auth: AuthServiceDep
) -> Tokens:
    """OAuth2 password flow (the Authorize button in Swagger UI); same as login."""
    return await auth.login(canonical_email(form.username), form.password)


@router.post(
    "/refresh",
    response_model=Tokens,
    responses=problems(InvalidRefreshToken, TokenReused, AccountDisabled),
    dependencies=[DEFAULT_LIMIT, NO_STORE],
)
async def refresh_tokens(body: RefreshRequest, auth: AuthServiceDep) -> Tokens:
    """Exchange a refresh token for new tokens.

    The refresh token is spent. Presenting a spent one again answers `401 token_reused` and
    ends every session of that login.
    """
    return await auth.refresh(body.refresh_token)


@router.post("/logout", status_code=204, dependencies=[DEFAULT_LIMIT])
async def logout_account(body: RefreshRequest, auth: AuthServiceDep) -> Response:
    """End the login this refresh token belongs to."""
    await auth.logout(body.refresh_token)
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=UserRead,
    responses=problems(Unauthorized, AccountDisabled),
    dependencies=[DEFAULT_LIMIT],
)
async def get_me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user


@router.patch(
    "/me",
    response_model=UserRead,
    responses=problems(Unauthorized, AccountDisabled),
    dependencies=[DEFAULT_LIMIT],
)
async def update_me(body: UserUpdate, user: CurrentUser, users: UserServiceDep) -> User | None:
    """Change your own profile."""
    return await users.update(user.id, body.model_dump(exclude_unset=True))


@router.post(
    "/me/password",
    status_code=204,
    responses=problems(InvalidPassword, Unauthorized, AccountDisabled),
    dependencies=[DEFAULT_LIMIT],
)
async def change_password(
    body: PasswordChange, user: CurrentUser, auth: AuthServiceDep
) -> Response:
    """Change your password; every session ends."""
    await auth.change_password(user, body.current_password, body.new_password)
    return Response(status_code=204)


@router.post(
    "/password/forgot",
    status_code=202,
    response_class=Response,
    responses={
        202: {"description": "Accepted, with no body: a link is mailed if the account exists"}
    },
    dependencies=[
        rate_limit(RateLimits.AUTH_PASSWORD_FORGOT, per_ip=True, per_account=True),
        Depends(_reset_account),
    ],
)
async def forgot_password(body: PasswordForgot, auth: DeferredAuthServiceDep) -> Response:
    """Mail a reset link if the account exists; always 202, so emails cannot be probed."""
    await auth.forgot_password(body.email)
    return Response(status_code=202)


@router.post(
    "/password/reset",
    status_code=204,
    responses=problems(InvalidActionToken),
    dependencies=[DEFAULT_LIMIT],
)
async def reset_password(body: PasswordReset, auth: AuthServiceDep) -> Response:
    """Set a new password with a reset token; every session ends."""
    await auth.reset_password(body.token, body.new_password)
    return Response(status_code=204)


@router.post(
    "/verify/request",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Accepted, with no body: a new link is on its way"}},
    dependencies=[rate_limit(RateLimits.AUTH_VERIFY_REQUEST)],
)
async def request_verification(user: CurrentUser, auth: AuthServiceDep) -> Response:
    """Mail a new email-verification link."""
    await auth.request_verification(user)
    return Response(status_code=202)


@router.post(
    "/verify",
    response_model=UserRead,
    responses=problems(InvalidActionToken),
    dependencies=[DEFAULT_LIMIT],
)
async def verify_email(body: VerifyRequest, auth: AuthServiceDep) -> User:
    """Confirm an email address with the mailed token."""
    return await auth.verify_email(body.token)


@router.get("/oauth/providers", response_model=OAuthProviders, dependencies=[DEFAULT_LIMIT])
async def list_oauth_providers(oauth: OAuthServiceDep) -> OAuthProviders:
    """The OAuth providers this deployment has configured."""
    return OAuthProviders(providers=oauth.provider_names())


@router.get(
    "/oauth/{provider}/authorize",
    response_model=AuthorizationUrl,
    responses=problems(UnknownProvider, InvalidRedirectUri, OAuthProviderError),
    dependencies=[DEFAULT_LIMIT],
)
async def authorize_oauth(
    provider: str,
    redirect_uri: Annotated[str, Query(max_length=2048)],
    oauth: OAuthServiceDep,
) -> AuthorizationUrl:
    """The provider URL to send the browser to (state and PKCE are kept server-side)."""
    return AuthorizationUrl(authorization_url=await oauth.authorization_url(provider, redirect_uri))


@router.post(
    "/oauth/{provider}/callback",
    response_model=OAuthLogin,
    responses=problems(
        UnknownProvider, InvalidOAuthState, EmailUnverified, AccountDisabled, OAuthProviderError
    ),
    dependencies=[DEFAULT_LIMIT, NO_STORE],
)
async def complete_oauth(provider: str, body: OAuthCallback, oauth: OAuthServiceDep) -> OAuthLogin:
    """Finish sign-in with the provider's code and the state it echoed."""
    return await oauth.callback(provider, body.code, body.state)
