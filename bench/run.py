"""`make bench`: load the API on loopback with wrk; print req/s, p50, p99 and cache hit ratio.

The API runs as `make run` starts it (one uvicorn worker), plus a local `redis-server`, so rate
limits, the user cache and the project cache use Redis as in production. Limits are raised so
that nothing is refused: the figures are the cost of counting, not of refusing.

The database is the one `make run` starts: `secantusd-py` on disk with `--sync-on-commit`.

Scenarios, in one run:
- `GET /healthz` — no middleware work beyond the basics, for scale;
- `GET /api/v2` — anonymous, rate-limited;
- `GET /api/v2/projects` — a signed-in user with 20 projects: JWT, user cache, limiter, list
  cache hit;
- a 20:1 read:write mix on that list (wrk Lua), for the cache hit ratio;
- the webhook inbox (new and duplicate events) beside the engine's own rate for the same
  operations, with 0 and then 50,000 events stored;
- `GET /api/v2/projects` uncached (a second API process with `CACHE_TTL_PROJECT_LIST=0`) for
  the same user, with 0 and then 20,000 other projects in the collection.

Usage: python -m bench.run [--duration 10] [--connections 64]
"""

import argparse
import asyncio
import platform
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from backend.dev import local_database
from bench import engine, webhooks
from bench.server import api_server
from bench.wrk import Result, run_wrk
from tests.support.servers import RedisServer, free_port

DATABASE = "bench"
STORED_EVENTS = 50_000
OTHER_PROJECTS = 20_000

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


def _webhook_rounds(
    base: str, mongo_url: str, tmp: Path, args: argparse.Namespace
) -> dict[int, list[webhooks.InboxRun]]:
    """The inbox beside the engine ceiling, at 0 and at STORED_EVENTS stored events."""
    rounds = {}
    for stored in (0, STORED_EVENTS):
        if stored:
            asyncio.run(engine.seed_events(mongo_url, DATABASE, stored))
        rounds[stored] = webhooks.run(
            base,
            tmp,
            mongo_url=mongo_url,
            database=DATABASE,
            duration_s=args.duration,
            connections=args.connections,
        )
    return rounds


def _uncached_list(
    env: dict[str, str], mongo_url: str, token: str, args: argparse.Namespace
) -> list[Result]:
    """The project list with its cache off, before and after other users' projects appear."""
    results = []
    auth = {"Authorization": f"Bearer {token}"}
    with api_server(free_port(), {**env, "CACHE_TTL_PROJECT_LIST": "0"}) as base:
        for others in (0, OTHER_PROJECTS):
            if others:
                asyncio.run(engine.seed_projects(mongo_url, DATABASE, others))
            name = f"GET /api/v2/projects (20, uncached, {others:,} other projects)"
            url = base + "/api/v2/projects"
            run_wrk(name, url, duration_s=2, connections=args.connections, headers=auth)
            results.append(
                run_wrk(name, url, duration_s=args.duration, connections=args.connections,
                        headers=auth)
            )  # fmt: skip
    return results


def _report(
    args: argparse.Namespace,
    results: list[Result],
    counts: Counter[str],
    calls: dict[str, str],
    rounds: dict[int, list[webhooks.InboxRun]],
    uncached: list[Result],
) -> None:
    hits, misses, coalesced = counts["hits"], counts["misses"], counts["coalesced"]
    reads = hits + misses
    print(
        f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()} · 1 uvicorn worker + redis-server"
        f" + secantusd-py (on disk, sync on commit)"
        f" · wrk 1 thread, {args.connections} connections, {args.duration}s"
    )
    print(_table(results))
    print(
        f"project_list cache in the 20:1 mix: {reads:,} reads, {hits:,} hits, {misses:,} misses"
        f" ({coalesced:,} of them waited for a concurrent computation): hit ratio"
        f" {hits / max(reads, 1):.1%}; reads that queried MongoDB"
        f" {(misses - coalesced) / max(reads, 1):.1%}"
    )
    print("Webhook inbox beside the engine's own rate for the same operations:")
    print("| stored events | scenario | inbox events/s | p99 ms | engine events/s | share |")
    print("|---:|---|---:|---:|---:|---:|")
    for stored, runs in rounds.items():
        for run in runs:
            print(
                f"| {stored:,} | {run.result.name} | {run.result.requests_per_s:,.0f}"
                f" | {run.result.p99_ms:.0f} | {run.ceiling_per_s:,.0f} | {run.share:.0%} |"
            )
    for runs in rounds.values():
        for run in runs:
            print(f"  {run.result.name}: outcomes {run.outcomes}")
    print("Uncached project list:")
    print(_table(uncached))
    if len(uncached) == 2 and uncached[0].requests_per_s:
        ratio = uncached[1].requests_per_s / uncached[0].requests_per_s
        print(f"  with {OTHER_PROJECTS:,} other projects: {ratio:.0%} of the rate with none")
    print("Redis commands per request (evalsha is one round trip; commands it runs follow it):")
    for name, text in calls.items():
        print(f"  {name}: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario (≤ 120)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra API setting"
    )
    args = parser.parse_args()

    redis_server = RedisServer().start()
    results: list[Result] = []
    calls: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            with local_database(tmp / "data", free_port()) as mongo_url:
                env = {
                    "MONGODB_URL": mongo_url,
                    "MONGODB_DB": DATABASE,
                    "REDIS_URL": redis_server.url,
                    "RATE_LIMIT_DEFAULT_ANONYMOUS": "100000000/minute",
                    "RATE_LIMIT_DEFAULT_USER": "100000000/minute",
                    "RATE_LIMIT_STRIPE_WEBHOOK": "100000000/minute",
                    "STRIPE_SECRET_KEY": "sk_test_bench",
                    "STRIPE_WEBHOOK_SECRET": webhooks.WEBHOOK_SECRET,
                    **dict(item.split("=", 1) for item in args.env),
                }
                with api_server(free_port(), env) as base:
                    token, project_id = _seed(base)
                    results, calls = _cached_scenarios(base, redis_server.url, token, args)
                    counts = _mix(base, tmp, token, project_id, args, results)
                    rounds = _webhook_rounds(base, mongo_url, tmp, args)
                uncached = _uncached_list(env, mongo_url, token, args)
    finally:
        redis_server.close()
    _report(args, results, counts, calls, rounds, uncached)


def _cached_scenarios(
    base: str, redis_url: str, token: str, args: argparse.Namespace
) -> tuple[list[Result], dict[str, str]]:
    auth = {"Authorization": f"Bearer {token}"}
    scenarios = [
        ("GET /healthz", "/healthz", {}),
        ("GET /api/v2 (anonymous, limited)", "/api/v2", {}),
        ("GET /api/v2/projects (20, cached)", "/api/v2/projects", auth),
    ]
    results, calls = [], {}
    for name, path, headers in scenarios:
        run_wrk(name, base + path, duration_s=2, connections=args.connections, headers=headers)
        before = _redis_calls(redis_url)
        result = run_wrk(
            name, base + path, duration_s=args.duration, connections=args.connections,
            headers=headers,
        )  # fmt: skip
        requests = result.requests_per_s * args.duration
        delta = _redis_calls(redis_url) - before
        calls[name] = (
            ", ".join(f"{command} {count / requests:.2f}" for command, count in delta.items())
            or "none"
        )
        results.append(result)
    return results, calls


def _mix(
    base: str,
    tmp: Path,
    token: str,
    project_id: str,
    args: argparse.Namespace,
    results: list[Result],
) -> Counter[str]:
    """The 20:1 read:write mix; appends its result and returns the list cache's counts."""
    script = tmp / "mix.lua"
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
    return counts


if __name__ == "__main__":
    main()
