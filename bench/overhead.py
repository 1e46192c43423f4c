"""`make bench`, part 1: what our request path costs beside bare FastAPI (issue #16).

In one run, on this machine: every server under test runs one uvicorn worker pinned to core 0
(`taskset`), wrk (1 thread, 64 connections), Redis and the database get core 1. Each scenario is
measured `--rounds` times for `--duration` s after a 2 s warm-up, rounds interleaved so drift
hits every row alike; the table shows medians.

- `bench.baselines:hello` beside our `/healthz` (the middleware stack's cost);
- `bench.baselines:jwt_get` (verify a JWT, one Redis GET) beside our cached
  `GET /api/v2/projects` (JWT, rate limiter, user check, list cache hit); the baseline's GET
  returns the very bytes our list answers, under the same token;
- the 20:1 read:write mix on that list: reads served without MongoDB;
- the cached list on 1 worker (pinned) vs 2 workers (both cores, shared with wrk);
- uncached `GET /api/v2/projects/{id}` and list, with 0 and then 20,000 other projects;
- RSS of one worker over `--soak` seconds of the mix (10 minutes by default).

Usage: python -m bench.overhead [--duration 10] [--rounds 3] [--soak 600] [--only NAME ...]
"""

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from backend.dev import local_database
from bench import engine
from bench.baselines import PAGE_KEY
from bench.run import MIX_SCRIPT, PASSWORD, _cache_counts
from bench.server import api_server
from bench.wrk import Result, run_wrk
from tests.support.servers import RedisServer, free_port

DATABASE = "bench_overhead"
SERVER_CPU, LOAD_CPU = "0", "1"
OTHER_PROJECTS = 20_000
SETTLE_S = 15


def _median(name: str, runs: list[Result]) -> Result:
    return Result(
        name=name,
        requests_per_s=statistics.median(r.requests_per_s for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        errors="; ".join(r.errors for r in runs if r.errors),
    )


def _pin(pid: int, cpus: str) -> None:
    subprocess.run(["taskset", "-pc", cpus, str(pid)], check=True, capture_output=True)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RSS for {pid}")


def _seed(base: str) -> tuple[str, str, bytes]:
    """A user with 20 projects: (access token, one project id, the list's body)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        email = f"bench-{secrets.token_hex(4)}@example.com"
        client.post("/api/v2/auth/register", json={"email": email, "password": PASSWORD})
        tokens = client.post("/api/v2/auth/login", json={"email": email, "password": PASSWORD})
        token = tokens.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        ids = [
            client.post("/api/v2/projects", json={"name": f"Project {n}",
                        "description": f"Benchmark project number {n}"}, headers=auth).json()["id"]
            for n in range(20)
        ]  # fmt: skip
        listed = client.get("/api/v2/projects", headers=auth)
        assert listed.json()["meta"]["total"] == 20, listed.text
        return token, ids[0], listed.content


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lines: list[str] = []

    def wrk(self, name: str, url: str, **options: object) -> Result:
        return run_wrk(name, url, connections=self.args.connections, cpus=LOAD_CPU,
                       **options)  # type: ignore[arg-type]  # fmt: skip

    def compare(self, scenarios: list[tuple[str, str, dict[str, str]]]) -> list[Result]:
        """Medians of interleaved rounds, one row per (name, url, headers)."""
        for name, url, headers in scenarios:
            self.wrk(name, url, duration_s=2, headers=headers)
        runs: dict[str, list[Result]] = {name: [] for name, _, _ in scenarios}
        for _ in range(self.args.rounds):
            for name, url, headers in scenarios:
                runs[name].append(self.wrk(name, url, duration_s=self.args.duration,
                                           headers=headers))  # fmt: skip
        return [_median(name, found) for name, found in runs.items()]

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


def _table(results: list[Result]) -> str:
    rows = ["| scenario | req/s | p50 ms | p99 ms | non-2xx |", "|---|---:|---:|---:|---:|"]
    rows += [
        f"| {r.name} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.non_2xx} |"
        for r in results
    ]
    return "\n".join(rows)


def _ratio(ours: Result, baseline: Result) -> str:
    return (
        f"{ours.requests_per_s / baseline.requests_per_s:.2f}x the req/s, "
        f"p99 {ours.p99_ms / baseline.p99_ms:.2f}x ({ours.name} vs {baseline.name})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--soak", type=int, default=600, help="seconds of the RSS soak; 0 skips")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["platform", "mix", "workers", "uncached", "soak"],
        help="run only these parts",
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    parts = set(args.only or ["platform", "mix", "workers", "uncached", "soak"])
    if not args.soak:
        parts.discard("soak")
    bench = Bench(args)
    bench.say(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()}, {os.cpu_count()} cores"
        f" · Python {platform.python_version()} · servers on core {SERVER_CPU}, wrk"
        f" (1 thread, {args.connections} connections), Redis and the database on core {LOAD_CPU}"
        f" · medians of {args.rounds} x {args.duration} s"
    )
    jwt_secret = secrets.token_urlsafe(48)
    redis_server = RedisServer().start()
    assert redis_server.process is not None
    _pin(redis_server.process.pid, LOAD_CPU)
    with ExitStack() as stack:
        stack.callback(redis_server.close)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        mongo_url = stack.enter_context(local_database(tmp / "data", free_port()))
        env = {
            "MONGODB_URL": mongo_url,
            "MONGODB_DB": DATABASE,
            "REDIS_URL": redis_server.url,
            "JWT_SECRET": jwt_secret,
            "LOG_FORMAT": "json",  # as deployed (compose)
            "RATE_LIMIT_DEFAULT_ANONYMOUS": "100000000/minute",
            "RATE_LIMIT_DEFAULT_USER": "100000000/minute",
            **dict(item.split("=", 1) for item in args.env),
        }
        ours = stack.enter_context(api_server(free_port(), env, cpus=SERVER_CPU))
        token, project_id, page = _seed(ours)
        with redis.Redis.from_url(redis_server.url) as client:
            sub = token_subject(token)
            client.set(f"{PAGE_KEY}:{sub}", page)
        auth = {"Authorization": f"Bearer {token}"}
        if "platform" in parts:
            baseline_env = {"BENCH_REDIS_URL": redis_server.url, "BENCH_JWT_SECRET": jwt_secret}
            hello = stack.enter_context(api_server(free_port(), app="bench.baselines:hello",
                                                   cpus=SERVER_CPU, ready_path="/"))  # fmt: skip
            jwt_get = stack.enter_context(
                api_server(free_port(), baseline_env, app="bench.baselines:jwt_get",
                           cpus=SERVER_CPU, ready_path="/docs")
            )  # fmt: skip
            rows = bench.compare(
                [
                    ("baseline: bare FastAPI hello", hello + "/", {}),
                    ("GET /healthz", ours + "/healthz", {}),
                    ("baseline: FastAPI + JWT + one Redis GET", jwt_get + "/page", auth),
                    ("GET /api/v2/projects (20, cached)", ours + "/api/v2/projects", auth),
                ]
            )
            bench.say(_table(rows))
            bench.say(f"- healthz: {_ratio(rows[1], rows[0])}")
            bench.say(f"- cached list: {_ratio(rows[3], rows[2])}")
        if "mix" in parts:
            _mix(bench, ours, tmp, token, project_id)
        if "workers" in parts:
            _workers(bench, env, auth)
        if "uncached" in parts:
            _uncached(bench, env, mongo_url, auth, project_id)
        if "soak" in parts:
            _soak(bench, env, tmp)
    bench.say()


def token_subject(token: str) -> str:
    import base64
    import json

    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def _mix(bench: Bench, base: str, tmp: Path, token: str, project_id: str) -> None:
    script = tmp / "mix.lua"
    script.write_text(MIX_SCRIPT.format(project_id=project_id, token=token))
    before = _cache_counts(base, "project_list")
    result = bench.wrk("20:1 read:write on /api/v2/projects", base + "/api/v2/projects",
                       duration_s=bench.args.duration, script=script)  # fmt: skip
    counts = _cache_counts(base, "project_list")
    counts.subtract(before)
    reads = counts["hits"] + counts["misses"]
    computed = counts["misses"] - counts["coalesced"]
    bench.say(_table([result]))
    bench.say(
        f"- list cache in the mix: {reads:,} reads, {counts['hits']:,} hits,"
        f" {counts['coalesced']:,} waited for one computation, {computed:,} queried MongoDB:"
        f" **{1 - computed / max(reads, 1):.1%} of reads served without MongoDB**"
    )


def _workers(bench: Bench, env: dict[str, str], auth: dict[str, str]) -> None:
    results = []
    for workers, cpus in ((1, SERVER_CPU), (2, None)):
        with api_server(free_port(), env, workers=workers, cpus=cpus) as base:
            name = f"cached list, {workers} worker(s)" + (" pinned" if cpus else ", both cores")
            results.append(bench.compare([(name, base + "/api/v2/projects", auth)])[0])
    bench.say(_table(results))
    bench.say(f"- 2 workers: {results[1].requests_per_s / results[0].requests_per_s:.2f}x of 1")


def _uncached(
    bench: Bench, env: dict[str, str], mongo_url: str, auth: dict[str, str], project_id: str
) -> None:
    off = {**env, "CACHE_TTL_PROJECT_LIST": "0", "CACHE_TTL_PROJECT": "0"}
    results = []
    with api_server(free_port(), off, cpus=SERVER_CPU) as base:
        for others in (0, OTHER_PROJECTS):
            if others:
                asyncio.run(engine.seed_projects(mongo_url, DATABASE, others))
                time.sleep(SETTLE_S)  # the engine syncs and checkpoints the seed after it
            results += bench.compare(
                [
                    (f"uncached list, {others:,} other projects", base + "/api/v2/projects", auth),
                    (
                        f"uncached get, {others:,} other projects",
                        f"{base}/api/v2/projects/{project_id}",
                        auth,
                    ),
                ]
            )
    bench.say(_table(results))
    for empty, full in ((results[0], results[2]), (results[1], results[3])):
        bench.say(f"- {full.name}: {full.requests_per_s / empty.requests_per_s:.0%} of the empty")


def _soak(bench: Bench, env: dict[str, str], tmp: Path) -> None:
    samples: list[tuple[float, float]] = []
    port = free_port()
    with api_server(port, env, cpus=SERVER_CPU) as base:
        # A token of its own, issued now: one from the start of a full run expires (15 min)
        # before the soak ends, and the rest of the soak would measure 401s.
        token, project_id, _ = _seed(base)
        script = tmp / "soak.lua"
        script.write_text(MIX_SCRIPT.format(project_id=project_id, token=token))
        pid = _listening_pid(port)
        started = time.monotonic()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(10):
                samples.append((time.monotonic() - started, _rss_mib(pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = run_wrk("soak: 20:1 mix", base + "/api/v2/projects", duration_s=bench.args.soak,
                         connections=bench.args.connections, script=script, cpus=LOAD_CPU,
                         max_duration_s=bench.args.soak)  # fmt: skip
        stop.set()
        sampler.join()
    at_minute = _at(samples, lambda t: t >= 60)
    last = samples[-1][1]
    bench.say(_table([result]))
    bench.say(
        f"- RSS of the worker: {samples[0][1]:.1f} MiB at {samples[0][0]:.0f} s,"
        f" {at_minute:.1f} MiB after 1 min, {last:.1f} MiB after {samples[-1][0]:.0f} s"
        f" (**{last / at_minute - 1:+.1%}** from the first minute); peak"
        f" {max(rss for _, rss in samples):.1f} MiB"
    )


def _at(samples: list[tuple[float, float]], when: Callable[[float], bool]) -> float:
    return next(rss for t, rss in samples if when(t))


def _listening_pid(port: int) -> int:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return int(out.split("pid=")[1].split(",")[0])


if __name__ == "__main__":
    main()
