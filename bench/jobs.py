"""Generation jobs under load: admission rate, generation time, 200 SSE followers.

- Jobs accepted per second on one API worker (wrk POSTs /generate/fullstack; Redis queue, no
  worker running, so the figure is admission + enqueue: the transaction and the XADD).
- Fullstack generation time for a 5-model spec: the generator alone (in process, median of
  20), and a whole job through the API and one `python -m backend worker` (submit → done).
- 200 SSE followers (10 on each of 20 jobs): the API process's CPU while they wait on queued
  jobs, then the delay from an event's commit (`job_events.at`) to its arrival at a follower
  once a worker runs the jobs.

Usage: python -m bench.jobs [--duration 10]
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from backend.dev import local_database
from backend.generation.fullstack.generator import generate
from bench.server import ROOT, api_server
from bench.wrk import run_wrk
from schemas.generation_schemas import FullstackCreate
from tests.support.servers import RedisServer, free_port

PASSWORD = "Bench-Pass-123"
DATABASE = "bench_jobs"
FOLLOWED_JOBS, FOLLOWERS_EACH = 20, 10


def spec(models: int) -> dict[str, Any]:
    types = ["string", "text", "integer", "float", "boolean", "date", "datetime", "email"]
    return {
        "project_name": "Bench shop",
        "data_models": [
            {"name": f"Model{m}", "fields": [{"name": f"f{i}", "type": types[i % 8]}
                                             for i in range(8)]}
            for m in range(models)
        ],
        "features": ["auth", "pagination", "search", "timestamps"],
        "framework": "fastapi",
        "database": "sqlite",
    }  # fmt: skip


def _token(base: str) -> str:
    with httpx.Client(base_url=base, timeout=30) as client:
        body = {"email": "jobs@example.com", "password": PASSWORD}
        client.post("/api/v2/auth/register", json=body)
        return str(client.post("/api/v2/auth/login", json=body).json()["access_token"])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _uvicorn_pid(port: int) -> int:
    out = subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True, text=True)
    return int(out.stdout.split()[0])


async def _follow(base: str, token: str, job_id: str, arrivals: list[tuple[str, int, float]]):
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as client,
        client.stream("GET", f"/api/v2/generate/jobs/{job_id}/events", headers=headers) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("id:"):
                arrivals.append((job_id, int(line[3:]), time.time()))


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend", "worker"], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _followers(base: str, token: str, env: dict[str, str], mongo_url: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        ids = [
            (await client.post("/api/v2/generate/fullstack", json=spec(5), headers=headers)).json()[
                "id"
            ]
            for _ in range(FOLLOWED_JOBS)
        ]
    arrivals: list[tuple[str, int, float]] = []
    tasks = [
        asyncio.create_task(_follow(base, token, job_id, arrivals))
        for job_id in ids
        for _ in range(FOLLOWERS_EACH)
    ]
    await asyncio.sleep(3)  # all connected, replayed the queued event, now waiting
    pid = _uvicorn_pid(int(base.rsplit(":", 1)[1]))
    before, started = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(10)
    idle_cpu = (_cpu_seconds(pid) - before) / (time.monotonic() - started)
    worker = _worker(env)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 300)
    finally:
        worker.terminate()
        worker.wait(30)
    with MongoClient(mongo_url) as mongo:
        committed = {
            (doc["job_id"], doc["seq"]): doc["at"].replace(tzinfo=UTC).timestamp()
            for doc in mongo[DATABASE]["job_events"].find({"job_id": {"$in": ids}})
        }
    delays = sorted(
        (arrived - committed[(job, seq)]) * 1000
        for job, seq, arrived in arrivals
        if seq > 1 and (job, seq) in committed
    )
    return {
        "followers": len(tasks),
        "idle_cpu": idle_cpu,
        "events": len(delays),
        "p50": statistics.median(delays),
        "p99": delays[int(len(delays) * 0.99) - 1],
    }


async def _job_time(base: str, token: str, env: dict[str, str]) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    worker = _worker(env)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            await asyncio.sleep(3)
            times = []
            for _ in range(5):
                started = time.monotonic()
                job = (
                    await client.post("/api/v2/generate/fullstack", json=spec(5), headers=headers)
                ).json()
                while job["status"] in ("queued", "running"):
                    await asyncio.sleep(0.01)
                    job = (await client.get(f"/api/v2/generate/jobs/{job['id']}",
                                            headers=headers)).json()  # fmt: skip
                times.append(time.monotonic() - started)
            return statistics.median(times)
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    parsed = FullstackCreate.model_validate(spec(5))
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        files = generate(parsed)
        samples.append(time.perf_counter() - started)
    redis = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp, local_database(Path(tmp), free_port()) as url:
            env = {
                "MONGODB_URL": url, "MONGODB_DB": DATABASE, "REDIS_URL": redis.url,
                "RATE_LIMIT_GENERATE_FULLSTACK": "100000000/minute",
                "RATE_LIMIT_DEFAULT_USER": "100000000/minute",
                "QUOTA_FREE": "100000000", "MAX_ACTIVE_JOBS_FREE": "100000000",
                # One user follows every job with ten streams.
                "JOB_STREAMS_PER_JOB": "10", "JOB_STREAMS_PER_USER": "10000",
                "LOG_LEVEL": "warning",
            }  # fmt: skip
            with api_server(free_port(), env) as base:
                token = _token(base)
                body = Path(tmp) / "spec.json"
                body.write_text(json.dumps(spec(5)))
                script = Path(tmp) / "post.lua"
                script.write_text(
                    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.headers["Authorization"] = "Bearer {token}"\n'
                    f"wrk.body = [[{body.read_text()}]]\n"
                )
                accepted = run_wrk("POST /generate/fullstack (admission + enqueue)",
                                   base + "/api/v2/generate/fullstack", duration_s=args.duration,
                                   connections=16, script=script, timeout_s=30)  # fmt: skip
                with MongoClient(url) as mongo:  # the admission run's jobs: out of the way
                    mongo[DATABASE]["generation_jobs"].update_many(
                        {"status": "queued"}, {"$set": {"status": "canceled"}}
                    )
                job_time = asyncio.run(_job_time(base, token, env))
                follow = asyncio.run(_followers(base, token, env, url))
    finally:
        redis.close()
    _report(accepted, samples, len(files), job_time, follow)


def _report(accepted: Any, samples: list[float], files: int, job_time: float, follow: dict) -> None:
    when = f"{datetime.now(UTC):%Y-%m-%d} · {platform.machine()}"
    print(f"{when} · 1 uvicorn worker, secantusd-py on disk, redis-server")
    print(
        f"jobs accepted: {accepted.requests_per_s:,.0f}/s (p50 {accepted.p50_ms:.1f} ms, "
        f"p99 {accepted.p99_ms:.1f} ms, non-2xx {accepted.non_2xx}), wrk 16 connections"
    )
    generation_ms = statistics.median(samples) * 1000
    print(
        f"generate() of a 5-model spec: median {generation_ms:.1f} ms ({files} files); "
        f"whole job via API + 1 worker: median {job_time:.2f} s"
    )
    print(
        f"{follow['followers']} SSE followers: API CPU while idle {follow['idle_cpu']:.1%} "
        f"of a core; {follow['events']:,} events delivered, commit to client p50 "
        f"{follow['p50']:.1f} ms, p99 {follow['p99']:.1f} ms"
    )


if __name__ == "__main__":
    main()
