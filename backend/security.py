"""Credentials: access tokens (JWT, HS256, algorithms pinned), opaque tokens, password hashes."""

import hashlib
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from passlib.context import CryptContext

ALGORITHM = "HS256"
ISSUER = "devora-api"
AUDIENCE = "devora-app"
ACCESS = "access"
VERIFIED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for something else."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    token_id: str
    version: int
    expires_at: int


class TokenSigner:
    """Signs and verifies access tokens with one secret key."""

    def __init__(self, secret: str, ttl_s: int, *, leeway_s: int = 5) -> None:
        self._key = OctKey.import_key(secret.encode())
        self.ttl_s = ttl_s
        self.leeway_s = leeway_s
        # A client sends the same token many times: remember tokens already verified (a
        # dict lookup instead of an HMAC and a JSON parse), each only until it expires.
        self._verified: dict[str, AccessClaims] = {}
        self._registry = jwt.JWTClaimsRegistry(
            leeway=leeway_s,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            type={"essential": True, "value": ACCESS},
            ver={"essential": True},
        )

    def issue(self, user_id: str, version: int) -> str:
        """A token for `user_id` at the user's current token version."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "ver": version,
            "type": ACCESS,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return jwt.encode({"alg": ALGORITHM}, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid access token; anything else raises InvalidToken."""
        known = self._verified.get(token)
        if known is not None and known.expires_at + self.leeway_s > time.time():
            return known
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            self._registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
        claims = decoded.claims
        if not all(isinstance(claims[name], int) for name in ("ver", "exp")) or not isinstance(
            claims["sub"], str
        ):
            raise InvalidToken("malformed claims")
        return AccessClaims(
            user_id=claims["sub"],
            token_id=str(claims["jti"]),
            version=claims["ver"],
            expires_at=claims["exp"],
        )


def new_opaque_token() -> str:
    """A random token of 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store instead of an opaque token: its SHA-256, so a database leak yields nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


LOCAL_SECRET_FILE = "jwt_secret"


def local_jwt_secret(data_dir: Path) -> str:
    """The signing secret of a local run: generated once into `data_dir`, readable by its owner
    only, then read back, so restarts keep sessions and no two installations share a key."""
    path = data_dir / LOCAL_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{LOCAL_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        try:
            # A link fails if the name exists: of processes starting at once, one secret wins
            # and nobody reads a half-written file.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    if len(secret.encode()) < 32:
        raise ValueError(f"{path} holds no usable secret (under 32 bytes); delete it")
    return secret


def signing_secret(configured: str | None, data_dir: Path) -> str:
    """`JWT_SECRET` when set (always in production), else the local one."""
    return configured if configured else local_jwt_secret(data_dir)


class PasswordHasher:
    """argon2id for new hashes; bcrypt hashes still verify and are upgraded on login.

    Hashing is CPU work of tens of milliseconds, so it always runs in a worker thread; at most
    one per core at a time: argon2id takes 64 MiB per hash, so memory must not grow with a
    burst of logins, and more threads than cores would not hash any faster.
    """

    def __init__(self) -> None:
        self._context = CryptContext(schemes=["argon2", "bcrypt"], deprecated=["bcrypt"])
        # Verified when the email is unknown, so timing does not reveal which emails exist.
        self._dummy_hash = self._context.hash(secrets.token_urlsafe(16))
        self._limiter: anyio.CapacityLimiter | None = None  # made in the loop, on first use

    def _cores(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(os.cpu_count() or 1)
        return self._limiter

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._context.hash, password, limiter=self._cores())

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """(matches, new hash to store when the old scheme is deprecated)."""
        target = stored or self._dummy_hash
        matches, new_hash = await anyio.to_thread.run_sync(
            self._context.verify_and_update, password, target, limiter=self._cores()
        )
        return (bool(matches) and stored is not None), new_hash
