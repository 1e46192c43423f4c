"""Accounts and bearer tokens: `/auth/register`, `/auth/login`, and `CurrentUser` for every
resource route.

Passwords are hashed with scrypt (the standard library's); tokens are HS256 JWTs that expire
and name an account (`sub`) that must still exist when the token is used.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from app.db import Db
from app.errors import Unauthorized
from app.repositories.auth_user import AuthUserRepository

router = APIRouter(prefix="/auth", tags=["auth"])
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Annotated[str, Field(min_length=8, max_length=128)]


class Account(BaseModel):
    id: str
    email: str


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return base64.b64encode(salt + digest).decode()


def verify_password(password: str, stored: str) -> bool:
    raw = base64.b64decode(stored)
    digest = hashlib.scrypt(password.encode(), salt=raw[:16], **_SCRYPT)
    return hmac.compare_digest(digest, raw[16:])


# An unknown email costs as much as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def get_accounts(db: Db) -> AuthUserRepository:
    return AuthUserRepository(db)


Accounts = Annotated[AuthUserRepository, Depends(get_accounts)]


def _secret(request: Request) -> str:
    return request.app.state.settings.jwt_secret.get_secret_value()


def _issue(request: Request, user_id: str) -> AccessToken:
    ttl = request.app.state.settings.access_token_ttl_s
    claims = {"sub": user_id, "exp": datetime.now(UTC) + timedelta(seconds=ttl)}
    token = jwt.encode(claims, _secret(request), algorithm="HS256")
    return AccessToken(access_token=token, expires_in=ttl)


def current_user(
    request: Request,
    accounts: Accounts,
    authorization: Annotated[str | None, Header()] = None,
) -> Account:
    """The signed-in account; 401 without a valid, unexpired token naming a live account."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send Authorization: Bearer <token>")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, _secret(request), algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        raise Unauthorized("The token is invalid or expired") from None
    account = accounts.get(str(claims["sub"]))
    if account is None:
        raise Unauthorized("The token's account does not exist")
    return Account(id=account.id, email=account.email)


CurrentUser = Annotated[Account, Depends(current_user)]


@router.post("/register", status_code=201, response_model=Account)
def register(body: Credentials, accounts: Accounts) -> Account:
    """Create an account."""
    account = accounts.create(body.email.lower(), hash_password(body.password))
    return Account(id=account.id, email=account.email)


@router.post("/login", response_model=AccessToken)
def login(body: Credentials, request: Request, accounts: Accounts) -> AccessToken:
    """Exchange email and password for an access token."""
    account = accounts.find_by_email(body.email.lower())
    stored = account.password_hash if account else _DUMMY_HASH
    if not verify_password(body.password, stored) or account is None:
        raise Unauthorized("Wrong email or password")
    return _issue(request, account.id)
