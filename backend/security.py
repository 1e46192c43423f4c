"""Access tokens: short-lived JWTs signed with HS256, algorithms pinned on decode."""

import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS256"
ISSUER = "devora-api"
AUDIENCE = "devora-app"
ACCESS = "access"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for something else."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    token_id: str
    expires_at: int


class TokenSigner:
    """Signs and verifies access tokens with one secret key."""

    def __init__(self, secret: str, ttl_s: int, *, leeway_s: int = 5) -> None:
        self._key = OctKey.import_key(secret.encode())
        self.ttl_s = ttl_s
        self._registry = jwt.JWTClaimsRegistry(
            leeway=leeway_s,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            type={"essential": True, "value": ACCESS},
        )

    def issue(self, user_id: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
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
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            self._registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
        claims = decoded.claims
        if not isinstance(claims["sub"], str) or not isinstance(claims["exp"], int):
            raise InvalidToken("malformed claims")
        return AccessClaims(
            user_id=claims["sub"], token_id=str(claims["jti"]), expires_at=claims["exp"]
        )
