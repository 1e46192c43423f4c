"""`make bench`: load the API on loopback with wrk; print req/s, p50, p99 and cache hit ratio.

The API runs as `make run` starts it (one uvicorn worker), plus a local `redis-server`, so rate
limits, the user cache and the project cache use Redis as in production. Limits are raised so
that nothing is refused: the figures are the cost of counting, not of refusing.

Scenarios, in one run:
- `GET /healthz` — no middleware work beyond the basics, for scale;
- `GET /api/v2` — anonymous, rate-limited;
- `GET /api/v2/projects` — a signed-in user with 20 projects: JWT, user cache, limiter, list
  cache hit;
- a 20:1 read:write mix on that list (wrk Lua), for the cache hit ratio.

Usage: python -m bench.run [--duration 10] [--connections 64]
"""

import argparse
import platform
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from bench import webhooks
from bench.server import api_server
from bench.wrk import Result, run_wrk
from tests.servers import RedisServer, free_port

PASSWORD = "Bench-Pass-123"
MIX_SCRIPT = """
local counter = 0
request = function()
  counter = counter + 1
  if counter % 21 == 0 then
    return wrk.format("PATCH", "/api/v2/projects/{project_id}",
      {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}},
      '{{"description": "edit ' .. counter .. '"}}')
  end
  return wrk.format("GET", "/api/v2/projects", {{["Authorization"] = "Bearer {token}"}})
end
"""


def _table(results: list[Result]) -> str:
    lines = [
        "| scenario | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.non_2xx} | {r.errors or '-'} |"
        )
    return "\n".join(lines)


def _redis_calls(url: str) -> Counter[str]:
    """Calls per Redis command so far (commands a Lua script runs are listed too)."""
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return Counter(
        {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name != "cmdstat_info"
        }
    )


def _cache_counts(base: str, cache: str) -> Counter[str]:
    """hits, misses and coalesced misses of one cache, from /metrics."""
    counts: Counter[str] = Counter()
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        for kind in ("hits", "misses", "coalesced"):
            if line.startswith(f'cache_{kind}_total{{cache="{cache}"}}'):
                counts[kind] = int(float(line.rsplit(" ", 1)[1]))
    return counts


def _seed(base: str) -> tuple[str, str]:
    """A user with 20 projects; returns (access token, one project id)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        email = "bench@example.com"
        client.post("/api/v2/auth/register", json={"email": email, "password": PASSWORD})
        tokens = client.post("/api/v2/auth/login", json={"email": email, "password": PASSWORD})
        token = tokens.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ids = [
            client.post(
                "/api/v2/projects",
                json={"name": f"Project {n}", "description": f"Benchmark project number {n}"},
                headers=headers,
            ).json()["id"]
            for n in range(20)
        ]
        listed = client.get("/api/v2/projects", headers=headers).json()
        assert listed["meta"]["total"] == 20, listed
        return token, ids[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario (≤ 120)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra API setting"
    )
    args = parser.parse_args()

    redis_server = RedisServer().start()
    env = {
        "REDIS_URL": redis_server.url,
        "RATE_LIMIT_DEFAULT_ANONYMOUS": "100000000/minute",
        "RATE_LIMIT_DEFAULT_USER": "100000000/minute",
        "RATE_LIMIT_STRIPE_WEBHOOK": "100000000/minute",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": webhooks.WEBHOOK_SECRET,
        **dict(item.split("=", 1) for item in args.env),
    }
    results: list[Result] = []
    calls: dict[str, str] = {}
    try:
        with api_server(free_port(), env) as base:
            token, project_id = _seed(base)
            auth = {"Authorization": f"Bearer {token}"}
            scenarios = [
                ("GET /healthz", "/healthz", {}),
                ("GET /api/v2 (anonymous, limited)", "/api/v2", {}),
                ("GET /api/v2/projects (20, cached)", "/api/v2/projects", auth),
            ]
            for name, path, headers in scenarios:
                run_wrk(
                    name, base + path, duration_s=2, connections=args.connections, headers=headers
                )
                before = _redis_calls(redis_server.url)
                result = run_wrk(
                    name,
                    base + path,
                    duration_s=args.duration,
                    connections=args.connections,
                    headers=headers,
                )
                requests = result.requests_per_s * args.duration
                delta = _redis_calls(redis_server.url) - before
                calls[name] = (
                    ", ".join(
                        f"{command} {count / requests:.2f}" for command, count in delta.items()
                    )
                    or "none"
                )
                results.append(result)

            with tempfile.TemporaryDirectory() as tmp:
                script = Path(tmp) / "mix.lua"
                script.write_text(MIX_SCRIPT.format(project_id=project_id, token=token))
                counts_before = _cache_counts(base, "project_list")
                results.append(
                    run_wrk(
                        "20:1 read:write on /api/v2/projects",
                        base + "/api/v2/projects",
                        duration_s=args.duration,
                        connections=args.connections,
                        script=script,
                    )
                )
                counts = _cache_counts(base, "project_list")
                counts.subtract(counts_before)
                webhook_runs = webhooks.run(
                    base, Path(tmp), duration_s=args.duration, connections=args.connections
                )
    finally:
        redis_server.close()

    hits, misses, coalesced = counts["hits"], counts["misses"], counts["coalesced"]
    reads = hits + misses
    print(
        f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()} · 1 uvicorn worker + redis-server"
        f" · wrk 1 thread, {args.connections} connections, {args.duration}s"
    )
    print(_table(results))
    print(
        f"project_list cache in the 20:1 mix: {reads:,} reads, {hits:,} hits, {misses:,} misses"
        f" ({coalesced:,} of them waited for a concurrent computation): hit ratio"
        f" {hits / max(reads, 1):.1%}; reads that queried MongoDB"
        f" {(misses - coalesced) / max(reads, 1):.1%}"
    )
    print("Webhook inbox (MongoDB: the in-memory engine):")
    print(_table([result for result, _ in webhook_runs]))
    for result, outcomes in webhook_runs:
        print(f"  {result.name}: outcomes {outcomes}")
    print("Redis commands per request (evalsha is one round trip; commands it runs follow it):")
    for name, text in calls.items():
        print(f"  {name}: {text}")


if __name__ == "__main__":
    main()
