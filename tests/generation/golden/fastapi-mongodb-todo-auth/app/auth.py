"""Accounts and bearer tokens: `/auth/register`, `/auth/login`, and `require_user` for writes.

Passwords are hashed with scrypt (the standard library's); tokens are HS256 JWTs that expire.
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

from app.errors import Conflict, Unauthorized
from pymongo.errors import DuplicateKeyError

from app.db import get_db
from app.models.auth_user import COLLECTION

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


def _issue(request: Request, user_id: str) -> AccessToken:
    settings = request.app.state.settings
    ttl = settings.access_token_ttl_s
    claims = {"sub": user_id, "exp": datetime.now(UTC) + timedelta(seconds=ttl)}
    token = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    return AccessToken(access_token=token, expires_in=ttl)


def require_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The signed-in user's id; 401 without a valid, unexpired bearer token."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send Authorization: Bearer <token>")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, request.app.state.settings.jwt_secret, algorithms=["HS256"],
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError:
        raise Unauthorized("The token is invalid or expired") from None
    return str(claims["sub"])


@router.post("/register", status_code=201, response_model=Account)
def register(body: Credentials, db=Depends(get_db)) -> Account:  # noqa: B008
    """Create an account."""
    email = body.email.lower()
    try:
        result = db[COLLECTION].insert_one(
            {"email": email, "password_hash": hash_password(body.password)}
        )
    except DuplicateKeyError:
        raise Conflict("This email is registered already") from None
    return Account(id=str(result.inserted_id), email=email)


@router.post("/login", response_model=AccessToken)
def login(body: Credentials, request: Request, db=Depends(get_db)) -> AccessToken:  # noqa: B008
    """Exchange email and password for an access token."""
    doc = db[COLLECTION].find_one({"email": body.email.lower()})
    user_id, stored = (str(doc["_id"]), doc["password_hash"]) if doc else (None, _DUMMY_HASH)
    if not verify_password(body.password, stored) or user_id is None:
        raise Unauthorized("Wrong email or password")
    return _issue(request, user_id)
