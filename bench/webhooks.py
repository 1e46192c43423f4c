"""Webhook inbox load: pre-signed Stripe events replayed by wrk (signature checks included)."""

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import engine
from bench.wrk import Result, run_wrk

WEBHOOK_SECRET = "whsec_bench_secret"
PATH = "/api/v2/billing/webhooks/stripe"

SCRIPT = """
local sigs, bodies = {}, {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\\t")
    sigs[#sigs + 1] = line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "PATH",
    {["Content-Type"] = "application/json", ["Stripe-Signature"] = sigs[i]}, bodies[i])
end
""".replace("PATH", PATH)


def _signed(kind: str) -> str:
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"in_{secrets.token_hex(8)}",
                "object": "invoice",
                "customer": f"cus_{secrets.token_hex(6)}",
                "amount_paid": 2000,
            }
        },
        "livemode": False,
    }
    body = json.dumps(event, separators=(",", ":"))
    t = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}\t{body}"


def _outcomes(base: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("webhook_events_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            counts[outcome] = counts.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
    return counts


@dataclass
class InboxRun:
    result: Result
    outcomes: dict[str, float]
    ceiling_per_s: float  # the engine alone, for the same operations

    @property
    def share(self) -> float:
        return self.result.requests_per_s / self.ceiling_per_s


def run(
    base: str, tmp: Path, *, mongo_url: str, database: str, duration_s: int, connections: int
) -> list[InboxRun]:
    """New events, then one event delivered again; each beside the engine's own rate."""
    script = tmp / "webhooks.lua"
    script.write_text(SCRIPT)
    new = tmp / "new.tsv"
    # More distinct events than the run can send, so none repeats.
    new.write_text("\n".join(_signed("invoice.paid") for _ in range(40_000)) + "\n")
    duplicate = tmp / "duplicate.tsv"
    line = _signed("invoice.paid")
    duplicate.write_text(line + "\n")
    sig, body = line.split("\t", 1)
    httpx.post(base + PATH, content=body, headers={"Stripe-Signature": sig}).raise_for_status()

    duplicate_id = json.loads(body)["id"]
    results = []
    for kind, name, events in (
        ("new", "new events", new),
        ("duplicate", "duplicate deliveries", duplicate),
    ):
        before = _outcomes(base)
        result = run_wrk(
            f"POST webhook ({name})",
            base + PATH,
            duration_s=duration_s,
            connections=connections,
            script=script,
            script_args=[str(events)],
            # Where the engine slows with size a request can wait seconds behind the others;
            # counted late rather than dropped as a timeout.
            timeout_s=60,
        )
        after = _outcomes(base)
        ceiling = asyncio.run(
            engine.ceiling(
                mongo_url,
                database,
                kind,
                duration_s=duration_s,
                workers=connections,
                duplicate_id=duplicate_id,
            )
        )
        outcomes = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        results.append(InboxRun(result, outcomes, ceiling))
    return results
