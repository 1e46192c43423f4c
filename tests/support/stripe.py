"""localstripe, and a Stripe-shaped front for what it lacks (Checkout, Portal) and for faults.

`FakeStripe` answers `/v1/checkout/sessions` and `/v1/billing_portal/sessions` itself with
Stripe's response shapes and honours Idempotency-Key like Stripe does; it can be told to answer
the next requests on a path with 429, 500 or a dropped connection; everything else it forwards
to localstripe. The API under test points `STRIPE_API_BASE` at it.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn

from tests.support.servers import ThreadedServer, free_port, wait_for_port

SECRET_KEY = "sk_test_devora"
WEBHOOK_SECRET = "whsec_devora_test_secret"
PRICE_PRO = "price_pro_test"
PRICE_TEAM = "price_team_test"
REUSED_KEY = (
    "Keys for idempotent requests can only be used with the same parameters they were first "
    "used with."
)


class LocalStripe:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalStripe":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localstripe", "--port", str(self.port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=20)
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {SECRET_KEY}"}
        ) as c:
            c.post("/v1/products", data={"id": "prod_devora", "name": "Devora"}).raise_for_status()
            for price, amount in ((PRICE_PRO, 2000), (PRICE_TEAM, 8000)):
                c.post(
                    "/v1/plans",
                    data={
                        "id": price,
                        "amount": amount,
                        "currency": "usd",
                        "interval": "month",
                        "product": "prod_devora",
                    },
                ).raise_for_status()
        return self

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {SECRET_KEY}"})

    def subscribe(self, customer_id: str, price: str = PRICE_PRO) -> dict[str, Any]:
        """A paid, active subscription for `customer_id`, as a customer would get at Checkout."""
        with self.client() as c:
            token = c.post(
                "/v1/tokens",
                data={
                    "card[number]": "4242424242424242",
                    "card[exp_month]": "12",
                    "card[exp_year]": "2030",
                    "card[cvc]": "123",
                },
            ).json()["id"]
            c.post(
                f"/v1/customers/{customer_id}/sources", data={"source": token}
            ).raise_for_status()
            response = c.post(
                "/v1/subscriptions", data={"customer": customer_id, "items[0][plan]": price}
            )
            response.raise_for_status()
            return dict(response.json())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    form: dict[str, str]


@dataclass
class FakeStripe:
    upstream: str
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    faults: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    # Idempotency-Key → (the first request's form, its answer)
    _idempotent: dict[str, tuple[dict[str, str], tuple[int, bytes]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, path_prefix: str, *kinds: str) -> None:
        """The next requests on the path answer, in order: "429", "500", "drop" or "hang"
        (no answer for 30 s, then a 500)."""
        self.faults[path_prefix].extend(kinds)

    def requests_to(self, path_prefix: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.startswith(path_prefix)]

    def start(self) -> "FakeStripe":
        """Serve; after `stop`, serve again on the same port (Stripe back after an outage)."""
        self._server = ThreadedServer(self.app, self.port or None)
        self.port = self._server.port
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path, method = scope["path"], scope["method"]
        key = headers.get("idempotency-key")
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.seen.append(Seen(method, path, key, form))
        for prefix, queue in self.faults.items():
            if path.startswith(prefix) and queue:
                await self._fault(queue.popleft(), send)
                return
        status, payload = await self._answer(
            method, path, scope["query_string"], headers, body, form, key
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _fault(self, kind: str, send: Any) -> None:
        if kind == "hang":
            await asyncio.sleep(30)
            kind = "500"
        if kind == "drop":
            # Headers promise a body that never comes: the client sees a broken connection.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1000")],
                }
            )
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise ConnectionResetError("dropped on purpose")
        status = int(kind)
        error = {
            "error": {
                "type": "api_error" if status >= 500 else "invalid_request_error",
                "code": "rate_limit" if status == 429 else None,
                "message": f"injected {status}",
            }
        }
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(error).encode()})

    async def _answer(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: dict[str, str],
        body: bytes,
        form: dict[str, str],
        key: str | None,
    ) -> tuple[int, bytes]:
        if method == "POST" and path in ("/v1/checkout/sessions", "/v1/billing_portal/sessions"):
            if key and f"{path}|{key}" in self._idempotent:
                first_form, answer = self._idempotent[f"{path}|{key}"]
                if first_form != form:
                    return _stripe_error(400, "idempotency_error", None, None, REUSED_KEY)
                return answer
            if not await self._exists(f"/v1/customers/{form.get('customer')}", headers):
                return _stripe_error(400, "invalid_request_error", "resource_missing",
                                     "customer", "No such customer")  # fmt: skip
            made = self._checkout(form) if "checkout" in path else self._portal(form)
            answer = (200, json.dumps(made).encode())
            if key:
                self._idempotent[f"{path}|{key}"] = (form, answer)
            return answer
        cursor = parse_qs(query.decode()).get("starting_after")
        # localstripe pages from anywhere; Stripe refuses an id it does not know.
        if (
            method == "GET"
            and path == "/v1/invoices"
            and cursor
            and not await self._exists(f"/v1/invoices/{cursor[0]}", headers)
        ):
            return _stripe_error(
                400,
                "invalid_request_error",
                "resource_missing",
                "starting_after",
                "No such invoice",
            )
        async with httpx.AsyncClient(base_url=self.upstream, timeout=10) as client:
            response = await client.request(
                method,
                path + (f"?{query.decode()}" if query else ""),
                content=body,
                headers={
                    k: v for k, v in headers.items() if k in ("authorization", "content-type")
                },
            )
        return response.status_code, response.content

    async def _exists(self, path: str, headers: dict[str, str]) -> bool:
        async with httpx.AsyncClient(base_url=self.upstream, timeout=10) as client:
            found = await client.get(path, headers={"authorization": headers["authorization"]})
        return found.status_code == 200 and not found.json().get("deleted")

    @staticmethod
    def _checkout(form: dict[str, str]) -> dict[str, Any]:
        session_id = f"cs_test_{secrets.token_hex(12)}"
        return {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "customer": form.get("customer"),
            "client_reference_id": form.get("client_reference_id"),
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "status": "open",
            "payment_status": "unpaid",
            "subscription": None,
            "created": int(time.time()),
            "livemode": False,
        }

    @staticmethod
    def _portal(form: dict[str, str]) -> dict[str, Any]:
        session_id = f"bps_{secrets.token_hex(12)}"
        return {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": form.get("customer"),
            "return_url": form.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{session_id}",
            "created": int(time.time()),
            "livemode": False,
        }


def _stripe_error(
    status: int, kind: str, code: str | None, param: str | None, message: str
) -> tuple[int, bytes]:
    """An error as Stripe's API shapes it."""
    error = {"type": kind, "code": code, "param": param, "message": message}
    return status, json.dumps({"error": {k: v for k, v in error.items() if v}}).encode()


def sign(payload: bytes, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    """A Stripe-Signature header for `payload`, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(kind: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj},
        "livemode": False,
        "api_version": "2024-06-20",
    }


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def main() -> None:
    """`python -m tests.support.stripe PORT UPSTREAM`: the Stripe-shaped front in a process of
    its own, so that under `make chaos` it does not share the load generator's interpreter."""
    port, upstream = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(FakeStripe(upstream=upstream, port=port).app, host="127.0.0.1", port=port,
                log_level="warning", interface="asgi3")  # fmt: skip


if __name__ == "__main__":
    main()
