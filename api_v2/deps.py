"""One `Annotated` alias per thing a handler needs; services are built per request.

Every provider is `async def`, even without an await: FastAPI runs a plain `def` dependency
in a worker thread, and a thread hop per dependency per request cost most of our throughput.
The providers every signed-in request runs take the `Request` itself rather than
`ResourcesDep`: FastAPI solves a shared sub-dependency again for each dependant before it
looks in its cache, so each layer costs a full solving step per request.
"""

import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer

from api_v2.rate_limits import ACCESS_CLAIMS_SCOPE_KEY
from backend.config import Settings
from backend.errors import AppError, Forbidden, InvalidAccessToken, ServiceUnavailable, Unauthorized
from backend.generation.repository import JobRepository
from backend.integrations.stripe_gateway import PaymentProviderUnavailable
from backend.repositories.audit import AuditRepository
from backend.repositories.auth_tokens import (
    OAuthIdentityRepository,
    OAuthStateRepository,
    RefreshTokenRepository,
)
from backend.repositories.messages import MessageRepository
from backend.repositories.projects import ProjectRepository
from backend.repositories.stripe_events import StripeEventLog, StripeEventRepository
from backend.repositories.users import User, UserRepository
from backend.resources import Resources
from backend.security import AccessClaims, InvalidToken
from backend.services.admin import AdminService
from backend.services.auth import AccountDisabled, AuthService
from backend.services.billing import BillingService
from backend.services.billing_webhooks import WebhookInbox
from backend.services.credentials import Credentials
from backend.services.generation import GenerationService, generation_service
from backend.services.oauth import OAuthService
from backend.services.projects import ProjectService
from backend.services.users import UserService


def resources_of(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_resources(request: Request) -> Resources:
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


S = typing.TypeVar("S")


def _shared(resources: Resources, kind: type[S], build: Callable[[Resources], S]) -> S:
    """The process's one `kind` service, built on first use (services hold no request state)."""
    found = resources.services.get(kind)
    if found is None:
        found = resources.services[kind] = build(resources)
    return typing.cast(S, found)


def _new_users(resources: Resources) -> UserService:
    return UserService(UserRepository(resources.mongo.db), resources.cache)


def _users(resources: Resources) -> UserService:
    return _shared(resources, UserService, _new_users)


async def user_service(request: Request) -> UserService:
    return _users(resources_of(request))


UserServiceDep = Annotated[UserService, Depends(user_service)]


async def auth_service(resources: ResourcesDep, users: UserServiceDep) -> AuthService:
    credentials = Credentials.on(resources.mongo.db, resources.cache)
    return AuthService(
        users=users.users,
        user_service=users,
        refresh_tokens=credentials.refresh_tokens,
        action_tokens=credentials.action_tokens,
        credentials=credentials,
        hasher=resources.hasher,
        signer=resources.signer,
        mailer=resources.mailer,
        settings=resources.settings,
    )


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]


async def oauth_service(
    resources: ResourcesDep, users: UserServiceDep, auth: AuthServiceDep
) -> OAuthService:
    db = resources.mongo.db
    return OAuthService(
        providers=resources.oauth_providers,
        states=OAuthStateRepository(db),
        identities=OAuthIdentityRepository(db),
        users=users.users,
        user_service=users,
        auth=auth,
        frontend_origins=resources.settings.frontend_origins,
    )


OAuthServiceDep = Annotated[OAuthService, Depends(oauth_service)]

# Declares the bearer scheme in OpenAPI, so Swagger's Authorize button logs in via /auth/token.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v2/auth/token", auto_error=False)


async def access_claims(
    request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
) -> AccessClaims:
    """The verified claims of the request's access token (the rate limiter may have them)."""
    claims = request.scope.get(ACCESS_CLAIMS_SCOPE_KEY)
    if isinstance(claims, AccessClaims):
        return claims
    if not token:
        raise Unauthorized("Missing bearer token")
    try:
        return resources_of(request).signer.verify(token)
    except InvalidToken:
        raise InvalidAccessToken() from None


async def current_user(
    request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
) -> User:
    """The signed-in user, refused once disabled or after a password change.

    One provider for what every signed-in request runs (claims, then the user), so FastAPI
    solves one layer, not three."""
    claims = await access_claims(request, token)
    user = await _users(resources_of(request)).get(claims.user_id)
    if user is None or claims.version != user.token_version:
        raise InvalidAccessToken()
    if not user.is_active:
        raise AccountDisabled()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if user.role != "admin":
        raise Forbidden("Administrators only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def _new_projects(resources: Resources) -> ProjectService:
    db = resources.mongo.db
    return ProjectService(
        projects=ProjectRepository(db),
        messages=MessageRepository(db),
        users=UserRepository(db),
        mongo=resources.mongo,
        cache=resources.cache,
        caps=resources.caps,
    )


async def project_service(request: Request) -> ProjectService:
    return _shared(resources_of(request), ProjectService, _new_projects)


ProjectServiceDep = Annotated[ProjectService, Depends(project_service)]


async def get_generation_service(resources: ResourcesDep) -> GenerationService:
    return generation_service(resources)


GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]


async def admin_service(resources: ResourcesDep, generation: GenerationServiceDep) -> AdminService:
    db = resources.mongo.db
    settings = resources.settings
    inbox = None
    if resources.stripe is not None:
        inbox = WebhookInbox(
            events=webhook_events(resources), users=UserRepository(db), gateway=resources.stripe,
            cache=resources.cache, metrics=resources.metrics,
            prices={"pro": settings.stripe_price_pro, "team": settings.stripe_price_team},
        )  # fmt: skip
    return AdminService(
        mongo=resources.mongo, users=UserRepository(db), projects=ProjectRepository(db),
        jobs=JobRepository(db), refresh_tokens=RefreshTokenRepository(db),
        events=StripeEventLog(db), audit=AuditRepository(db), cache=resources.cache,
        generation=generation, inbox=inbox, stripe_gateway=resources.stripe,
    )  # fmt: skip


AdminServiceDep = Annotated[AdminService, Depends(admin_service)]


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int
    limit: int


async def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PageParams:
    return PageParams(page=page, limit=limit)


Pagination = Annotated[PageParams, Depends(page_params)]


async def billing_service(resources: ResourcesDep) -> BillingService:
    return BillingService(
        users=UserRepository(resources.mongo.db),
        gateway=resources.stripe,
        cache=resources.cache,
        settings=resources.settings,
    )


BillingServiceDep = Annotated[BillingService, Depends(billing_service)]


def webhook_events(resources: Resources) -> StripeEventRepository:
    abandoned_after = timedelta(seconds=resources.settings.stripe_webhook_abandoned_after_s)
    return StripeEventRepository(resources.mongo.db, abandoned_after)


async def webhook_inbox(resources: ResourcesDep) -> WebhookInbox:
    if resources.stripe is None:
        raise PaymentProviderUnavailable("Billing is not configured")
    settings = resources.settings
    return WebhookInbox(
        events=webhook_events(resources),
        users=UserRepository(resources.mongo.db),
        gateway=resources.stripe,
        cache=resources.cache,
        metrics=resources.metrics,
        prices={"pro": settings.stripe_price_pro, "team": settings.stripe_price_team},
    )


WebhookInboxDep = Annotated[WebhookInbox, Depends(webhook_inbox)]


# What a provider may refuse with: a route that depends on it (at any depth) documents these
# problems in OpenAPI (`api_v2.routing.DocumentedRoute`). Every provider that reaches MongoDB
# may answer 503 while the database is unreachable.
IMPLIED_PROBLEMS: dict[Callable[..., Any], tuple[type[AppError], ...]] = {
    access_claims: (Unauthorized, InvalidAccessToken),
    current_user: (Unauthorized, InvalidAccessToken, AccountDisabled, ServiceUnavailable),
    admin_user: (Forbidden,),
    **{
        provider: (ServiceUnavailable,)
        for provider in (
            user_service,
            auth_service,
            oauth_service,
            project_service,
            get_generation_service,
            admin_service,
            billing_service,
            webhook_inbox,
        )
    },
    webhook_inbox: (PaymentProviderUnavailable, ServiceUnavailable),
}
