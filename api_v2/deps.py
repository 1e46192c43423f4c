"""One `Annotated` alias per thing a handler needs.

Services are built once per process (`backend.services.registry`) and handed out here. Every
provider is `async def`: FastAPI runs a plain `def` dependency in a worker thread. The
providers every signed-in request runs take the `Request` itself rather than another
dependency, since FastAPI solves each layer of sub-dependencies again for every dependant.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer

from api_v2.rate_limits import ACCESS_CLAIMS_SCOPE_KEY
from backend.config import Settings
from backend.errors import (
    AccountDisabled,
    AppError,
    Forbidden,
    InvalidAccessToken,
    ServiceUnavailable,
    Unauthorized,
)
from backend.generation.service import GenerationService
from backend.integrations.stripe_gateway import PaymentProviderUnavailable
from backend.repositories.users import User
from backend.resources import Resources
from backend.security import AccessClaims, InvalidToken
from backend.services.admin import AdminService
from backend.services.auth import AuthService
from backend.services.billing import BillingService
from backend.services.billing_webhooks import WebhookInbox
from backend.services.oauth import OAuthService
from backend.services.projects import ProjectService
from backend.services.registry import Services
from backend.services.users import UserService


def resources_of(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_resources(request: Request) -> Resources:
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def user_service(request: Request) -> UserService:
    return services_of(request).users


UserServiceDep = Annotated[UserService, Depends(user_service)]


async def auth_service(request: Request) -> AuthService:
    return services_of(request).auth


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]


async def deferred_auth_service(request: Request) -> AuthService:
    """The auth service for a route that answers before any database call (its work runs
    after the response), so it implies no 503."""
    return services_of(request).auth


DeferredAuthServiceDep = Annotated[AuthService, Depends(deferred_auth_service)]


async def oauth_service(request: Request) -> OAuthService:
    return services_of(request).oauth


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
    user = await services_of(request).users.get(claims.user_id)
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


async def project_service(request: Request) -> ProjectService:
    return services_of(request).projects


ProjectServiceDep = Annotated[ProjectService, Depends(project_service)]


async def get_generation_service(request: Request) -> GenerationService:
    return services_of(request).generation


GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]


async def admin_service(request: Request) -> AdminService:
    return services_of(request).admin


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


async def billing_service(request: Request) -> BillingService:
    return services_of(request).billing


BillingServiceDep = Annotated[BillingService, Depends(billing_service)]


async def webhook_inbox(request: Request) -> WebhookInbox:
    inbox = services_of(request).webhooks
    if inbox is None:
        raise PaymentProviderUnavailable("Billing is not configured")
    return inbox


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
