"""Auth and user shapes."""

import itertools
import re
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, Field

from schemas.common import Strict, example

PASSWORD_RULE = "8-128 characters with an upper-case letter, a lower-case letter and a digit"


def _email(value: str) -> str:
    """Trimmed and lower-cased; syntax checked without DNS."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


def canonical_email(value: str) -> str:
    """The one form of an address wherever it is a key: accounts, rate-limit counters, the
    admin bootstrap. email-validator's normalisation (the domain through IDNA, so a full-width
    `e` or an ideographic full stop in `example.com` become ASCII), lower-cased. Text that is
    not an address at all is trimmed and lower-cased, so it still keys one counter."""
    try:
        return _email(value)
    except ValueError:
        return value.strip().lower()


def _password(value: str) -> str:
    if not (
        8 <= len(value) <= 128
        and re.search(r"[A-Z]", value)
        and re.search(r"[a-z]", value)
        and re.search(r"[0-9]", value)
    ):
        raise ValueError(f"password must be {PASSWORD_RULE}")
    return value


Email = Annotated[
    str, Field(max_length=320, json_schema_extra={"format": "email"}), AfterValidator(_email)
]
_ANY = r"[\s\S]*"
PASSWORD_PATTERN = "|".join(
    _ANY.join(order) for order in itertools.permutations(("[A-Z]", "[a-z]", "[0-9]"))
)
Password = Annotated[
    str,
    Field(
        min_length=8,
        max_length=128,
        description=f"{PASSWORD_RULE[0].upper()}{PASSWORD_RULE[1:]}",
        # Documents the rule for clients; the validator below enforces it. The three classes
        # in any order, without look-aheads: test generators (schemathesis, Hypothesis) make
        # strings for this form quickly and for a look-ahead far too slowly.
        json_schema_extra={"pattern": PASSWORD_PATTERN},
    ),
    AfterValidator(_password),
]
# Login accepts whatever was typed: the policy applies to new passwords only.
AnyPassword = Annotated[str, Field(min_length=1, max_length=1024)]
FullName = Annotated[str, Field(min_length=1, max_length=200)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


class UserRead(BaseModel):
    id: str
    email: str
    full_name: str | None
    role: Literal["user", "admin"]
    is_active: bool
    is_verified: bool
    plan: Literal["free", "pro", "team"]
    subscription_status: Literal["inactive", "trialing", "active", "past_due", "canceled"]
    oauth_providers: list[str]
    created_at: datetime


class UserCreate(Strict):
    model_config = example(email="ada@example.com", password="Correct-Horse-9", full_name="Ada")
    email: Email
    password: Password
    full_name: FullName | None = None


class UserUpdate(Strict):
    model_config = example(full_name="Ada Lovelace")
    full_name: FullName | None = None


class LoginRequest(Strict):
    model_config = example(email="ada@example.com", password="Correct-Horse-9")
    email: Email
    password: AnyPassword


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshRequest(Strict):
    model_config = example(refresh_token="q3J9Xn0aV1c2…")
    refresh_token: OpaqueToken


class PasswordChange(Strict):
    model_config = example(current_password="Correct-Horse-9", new_password="Battery-Staple-7")
    current_password: AnyPassword
    new_password: Password


class PasswordForgot(Strict):
    model_config = example(email="ada@example.com")
    email: Email


class PasswordReset(Strict):
    model_config = example(token="0Q0l_b5dHAeuCSoc…", new_password="Battery-Staple-7")
    token: OpaqueToken
    new_password: Password


class VerifyRequest(Strict):
    model_config = example(token="lCauiBMf-_pzgQ2u…")
    token: OpaqueToken


class OAuthProviders(BaseModel):
    providers: list[str]


class AuthorizationUrl(BaseModel):
    authorization_url: str


class OAuthCallback(Strict):
    model_config = example(code="4/0AX4XfWh…", state="sF1x0b9…")
    code: Annotated[str, Field(min_length=1, max_length=2048)]
    state: Annotated[str, Field(min_length=1, max_length=512)]


class OAuthLogin(Tokens):
    user: UserRead
    is_new_user: bool
