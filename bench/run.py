"""`make bench`: load the API on loopback with wrk and print req/s, p50 and p99.

Usage: python -m bench.run [--duration 10] [--connections 64]
"""

import argparse
import platform
from datetime import UTC, datetime

from bench.server import api_server
from bench.wrk import Result, run_wrk
from tests.servers import free_port


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint (≤ 120)")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    results: list[Result] = []
    with api_server(free_port()) as base:
        for name, path in (("GET /healthz", "/healthz"), ("GET /api/v2", "/api/v2")):
            run_wrk(name, base + path, duration_s=2, connections=args.connections)  # warm-up
            results.append(
                run_wrk(name, base + path, duration_s=args.duration, connections=args.connections)
            )
    print(
        f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()} · {platform.node()} · "
        f"1 uvicorn worker · wrk 1 thread, {args.connections} connections, {args.duration}s"
    )
    print(_table(results))


if __name__ == "__main__":
    main()
