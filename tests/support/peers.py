"""Real protocol peers the suite runs on loopback: SMTP, an OpenID provider, a GitHub look-alike."""

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlencode

import oidc_provider_mock
import werkzeug.serving
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from tests.support.servers import ThreadedServer, free_port


class SmtpSink:
    """An aiosmtpd server that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    async def wait_for(
        self, to: str, subject: str = "", count: int = 1, timeout: float = 5.0
    ) -> list[Message]:
        """Messages to `to` whose subject contains `subject`, once `count` have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if m["To"] == to and subject in m["Subject"]]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"no mail to {to} after {timeout}s: {len(self.messages)} in all")


@dataclass
class Recorded:
    """Form bodies of token requests a provider received."""

    token_requests: list[dict[str, str]] = field(default_factory=list)


def _recording(app: Callable[..., Any], recorded: Recorded, token_path: str) -> Any:
    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == token_path and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            recorded.token_requests.append(
                {key: values[0] for key, values in parse_qs(body.decode()).items()}
            )
            import io

            environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return middleware


@contextmanager
def oidc_provider() -> Iterator[tuple[str, Recorded]]:
    """oidc-provider-mock on a free port, recording token requests; yields (issuer, recorded)."""
    recorded = Recorded()
    app = _recording(oidc_provider_mock.app(require_nonce=True), recorded, "/oauth2/token")
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", recorded
    finally:
        server.shutdown()
        thread.join(5)


@dataclass
class GitHubUser:
    id: int
    login: str
    name: str | None
    emails: list[dict[str, Any]]


class FakeGitHub:
    """Authorize, token, `/user` and `/user/emails`, shaped like GitHub's, with PKCE enforced."""

    def __init__(self) -> None:
        self.users: dict[str, GitHubUser] = {}
        self.codes: dict[str, tuple[str, str, str]] = {}  # code -> (login, challenge, redirect)
        self.tokens: dict[str, str] = {}
        self.recorded = Recorded()
        self.fail_token_endpoint = False
        app = Starlette(
            routes=[
                Route("/login/oauth/authorize", self.authorize),
                Route("/login/oauth/access_token", self.token, methods=["POST"]),
                Route("/api/user", self.user),
                Route("/api/user/emails", self.emails),
            ]
        )
        self._server = ThreadedServer(app)

    @property
    def base(self) -> str:
        return self._server.url

    def start(self) -> "FakeGitHub":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    async def authorize(self, request: Request) -> RedirectResponse:
        """Stands in for the user approving: `login` picks who signs in."""
        q = request.query_params
        code = secrets.token_hex(8)
        self.codes[code] = (q["login"], q["code_challenge"], q["redirect_uri"])
        return RedirectResponse(
            f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
        )

    async def token(self, request: Request) -> JSONResponse:
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.recorded.token_requests.append(form)
        if self.fail_token_endpoint:
            return JSONResponse({"message": "down"}, status_code=500)
        login, challenge, redirect_uri = self.codes.pop(form.get("code", ""), ("", "", ""))
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if (
            not login
            or expected.rstrip(b"=").decode() != challenge
            or redirect_uri != form.get("redirect_uri")
        ):
            return JSONResponse({"error": "bad_verification_code"})
        token = secrets.token_hex(16)
        self.tokens[token] = login
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": "user:email"})

    def _user_of(self, request: Request) -> GitHubUser | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        login = self.tokens.get(token)
        return self.users.get(login) if login else None

    async def user(self, request: Request) -> JSONResponse:
        user = self._user_of(request)
        if user is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse({"id": user.id, "login": user.login, "name": user.name})

    async def emails(self, request: Request) -> JSONResponse:
        user = self._user_of(request)
        if user is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(user.emails)
