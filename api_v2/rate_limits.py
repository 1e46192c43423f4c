"""Every rate limit by name, and the dependency that applies one to a route."""

import math
from typing import Any

import limits
from fastapi import Depends, Request
from limits import RateLimitItem

from backend.config import Settings
from backend.errors import RateLimited
from backend.rate_limiter import Decision
from backend.resources import Resources
from backend.security import InvalidToken
from backend.services.users import signed_in_prefetch

RATE_LIMIT_HEADERS_SCOPE_KEY = "rate_limit_headers"
ACCESS_CLAIMS_SCOPE_KEY = "access_claims"


class RateLimits:
    """The policy: each limit's name and its `RATE_LIMIT_<NAME>` setting."""

    AUTH_LOGIN = "auth_login"
    AUTH_REGISTER = "auth_register"
    AUTH_PASSWORD_FORGOT = "auth_password_forgot"
    AUTH_VERIFY_REQUEST = "auth_verify_request"
    GENERATE_AGENTIC = "generate_agentic"
    GENERATE_FULLSTACK = "generate_fullstack"
    DEFAULT_USER = "default_user"
    DEFAULT_ANONYMOUS = "default_anonymous"
    STRIPE_WEBHOOK = "stripe_webhook"
    ADMIN = "admin"

    def __init__(self, settings: Settings) -> None:
        self.items: dict[str, RateLimitItem] = {
            name: limits.parse(getattr(settings, f"rate_limit_{name}"))
            for attr, name in vars(RateLimits).items()
            if attr.isupper()
        }

    @staticmethod
    def default_text(name: str) -> str:
        default = Settings.model_fields[f"rate_limit_{name}"].default
        return str(default)


DECISION_SCOPE_KEY = "rate_limit_decision"


def _bearer_user_id(request: Request, resources: Resources) -> str | None:
    """The user of a verified access token, remembered for the auth dependency."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims = resources.signer.verify(token)
    except InvalidToken:
        return None
    request.scope[ACCESS_CLAIMS_SCOPE_KEY] = claims
    return claims.user_id


def _enforce(request: Request, name: str, decision: Decision) -> None:
    """Show the tightest counter of this request in its headers; refuse if this one is out."""
    earlier: Decision | None = request.scope.get(DECISION_SCOPE_KEY)
    if earlier is not None:
        decision_shown = min(earlier, decision, key=lambda d: (d.allowed, d.remaining))
    else:
        decision_shown = decision
    request.scope[DECISION_SCOPE_KEY] = decision_shown
    request.scope[RATE_LIMIT_HEADERS_SCOPE_KEY] = _headers(decision_shown)
    if not decision.allowed:
        request.app.state.resources.metrics.rate_limit_rejections.labels(name).inc()
        raise RateLimited(
            f"Rate limit exceeded; retry in {decision.reset_after_s} s",
            headers={"Retry-After": str(decision.reset_after_s)},
        )


class RateLimit:
    """A route's limit, keyed by the verified user or else the client address.

    `name` applies to everyone; `user`/`anonymous` pick a limit by whether the caller
    presented a valid access token. `per_account` documents the second counter that the
    route adds with `count_for_account`.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        user: str | None = None,
        anonymous: str | None = None,
        per_ip: bool = False,
        per_account: bool = False,
    ) -> None:
        self.user_limit = user or name
        self.anonymous_limit = anonymous or name
        self.per_ip = per_ip
        self.per_account = per_account

    def describe(self) -> str:
        names = dict.fromkeys([self.user_limit, self.anonymous_limit])
        parts = [f"`{name.upper()}` {RateLimits.default_text(name)}" for name in names if name]
        who = "per client address" if self.per_ip else "per user, or per address when anonymous"
        extra = " and per target account" if self.per_account else ""
        return f"Rate limit: {' / '.join(parts)} by default, {who}{extra}."

    async def __call__(self, request: Request) -> None:
        resources: Resources = request.app.state.resources
        user_id = None if self.per_ip else _bearer_user_id(request, resources)
        name = self.user_limit if user_id else self.anonymous_limit
        assert name is not None
        policy: RateLimits = request.app.state.rate_limits
        client_ip = request.app.state.client_ip(request.scope)
        subject = f"user:{user_id}" if user_id else f"ip:{client_ip}"
        prefetch = signed_in_prefetch(user_id) if user_id else None
        decision = await resources.rate_limiter.hit(
            policy.items[name], name, subject, prefetch=prefetch
        )
        _enforce(request, name, decision)


async def count_for_account(request: Request, name: str, account: str) -> None:
    """The second counter of login and reset: per target account, so spreading guesses over
    addresses does not help. `account` is the address as the endpoint parsed it (canonical),
    never a second reading of the raw body, so no spelling or content type escapes it."""
    resources: Resources = request.app.state.resources
    policy: RateLimits = request.app.state.rate_limits
    decision = await resources.rate_limiter.hit(policy.items[name], name, "key", account[:320])
    _enforce(request, name, decision)


def _headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(math.ceil(decision.reset_after_s)).encode()),
    ]


def rate_limit(name: str | None = None, **options: Any) -> Any:
    """`dependencies=[rate_limit(RateLimits.AUTH_LOGIN)]` on a route."""
    return Depends(RateLimit(name, **options))


DEFAULT_LIMIT = rate_limit(user=RateLimits.DEFAULT_USER, anonymous=RateLimits.DEFAULT_ANONYMOUS)
