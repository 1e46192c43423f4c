"""`make bench`: load the API on loopback with wrk and print req/s, p50 and p99.

The API runs as `make run` starts it (one uvicorn worker), plus a local `redis-server` so the
rate limiter uses shared storage as in production. Limits are raised so that no request is
refused: the figure is the limiter's cost, not its refusals.

Usage: python -m bench.run [--duration 10] [--connections 64]
"""

import argparse
import platform
from collections import Counter
from datetime import UTC, datetime

import redis

from bench.server import api_server
from bench.wrk import Result, run_wrk
from tests.servers import RedisServer, free_port


def _table(results: list[Result]) -> str:
    lines = [
        "| endpoint | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint (≤ 120)")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    redis_server = RedisServer().start()
    env = {
        "REDIS_URL": redis_server.url,
        "RATE_LIMIT_DEFAULT_ANONYMOUS": "100000000/minute",
    }
    results: list[Result] = []
    calls_per_request: dict[str, str] = {}
    try:
        with api_server(free_port(), env) as base:
            for name, path in (("GET /healthz", "/healthz"), ("GET /api/v2 (limited)", "/api/v2")):
                run_wrk(name, base + path, duration_s=2, connections=args.connections)  # warm-up
                before = _redis_calls(redis_server.url)
                result = run_wrk(
                    name, base + path, duration_s=args.duration, connections=args.connections
                )
                requests = result.requests_per_s * args.duration
                delta = _redis_calls(redis_server.url) - before
                calls_per_request[name] = (
                    ", ".join(
                        f"{command} {calls / requests:.2f}" for command, calls in delta.items()
                    )
                    or "none"
                )
                results.append(result)
    finally:
        redis_server.close()
    print(
        f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()} · 1 uvicorn worker + redis-server"
        f" · wrk 1 thread, {args.connections} connections, {args.duration}s"
    )
    print(_table(results))
    print("Redis commands per request (evalsha is one round trip; commands it runs follow it):")
    for name, calls in calls_per_request.items():
        print(f"  {name}: {calls}")


if __name__ == "__main__":
    main()
