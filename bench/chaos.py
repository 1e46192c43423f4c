"""`make chaos` (issue #17): kill what the API stands on while a mixed load runs, then count.

Everything is a real process on loopback: `secantusd-py` on disk with `--sync-on-commit` (as
`make run` starts it), `redis-server` with an append-only file synced on every write (as a
production Redis keeping a queue), the API under uvicorn, two `python -m backend worker`
processes and the suite's scripted OpenAI-compatible server. Throughout each scenario a load of
`--clients` clients reads, creates, renames and deletes projects (each client its own, so the
last acknowledged name of each is known; a client deletes only above `KEEP_PROJECTS`, so the
data stays about the size a real account has instead of growing all run), logs in and submits
jobs. Every answer is tallied by the phase it
started in: before the fault, during it, after recovery.

Scenarios (each on the same stack, one after the other):
- redis: `kill -9` of redis-server, restarted 10 s later from its append-only file;
- database: `kill -9` of secantusd-py, restarted 8 s later on the same data;
- worker: `kill -9` of one worker while jobs run, a new worker started 3 s later;
- stripe: the Stripe-shaped server stops (connections refused) for 10 s, then serves again;
- llm: the model server answers every call with a 500 or never answers (alternately); agentic
  jobs run meanwhile.

After each: every acknowledged project is read back (by id, and through the cached list) and must
carry its last acknowledged name, and every acknowledged delete must stay deleted (a rename or
delete answered 5xx or not at all may have landed or not: either state is accepted, and how many
landed is reported; a job submission answered so is sent again with its Idempotency-Key, which
answers the job it made if it made one); every accepted job must end (none left queued or
running); each user's quota must count exactly the jobs that did not fail or get canceled.

With `--soak N`, last: the same load for N seconds with no fault (but with a job rate the two
workers sustain), sampling the API process's RSS, open files and connections to Redis and the
database every 10 s.

Stripe is localstripe behind the suite's Stripe-shaped front (`FakeStripe`, in a process of its
own); each client has a Stripe customer and subscription, opens the billing portal, and has
`checkout.session.completed` events delivered to the webhook (signed, each new, now and then
one delivered before). A delivery answered with anything but 200 is delivered again after the
fault, as Stripe would, until it is; then every event must be stored as processed.

Usage: python -m bench.chaos [--clients 16] [--only redis database worker stripe llm]
       [--soak 600]
(`--only --soak 600`: the soak alone)
"""

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from backend.dev import local_url, start_secantusd, wait_for_mongodb
from bench.jobs import spec
from bench.overhead import _listening_pid
from bench.server import ROOT, api_server
from tests.support.billing import BACK, WEBHOOK, customer_id, deliver
from tests.support.llm import Reply, ScriptedLLM
from tests.support.servers import RedisServer, free_port, wait_for_port
from tests.support.stripe import (
    PRICE_PRO,
    PRICE_TEAM,
    SECRET_KEY,
    WEBHOOK_SECRET,
    LocalStripe,
    event,
    sign,
)

PASSWORD = "Chaos-Passw0rd!"
REQUEST_TIMEOUT_S = 10.0  # an answer slower than this counts as a hang
JOB_END_TIMEOUT_S = 180.0
WEBHOOK_ABANDONED_AFTER_S = 10  # a handling cut off by a fault is taken again after this
REDELIVERY_TIMEOUT_S = 90.0
KEEP_PROJECTS = 20  # a client deletes one of its projects only when it has more
SCENARIOS = ["redis", "database", "worker", "stripe", "llm"]


@dataclass
class Outcome:
    """What one scenario's load met, by phase."""

    answers: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # phase, op, status
    slowest_s: Counter[str] = field(default_factory=Counter)  # phase -> slowest answer
    first_write_after_s: float | None = None

    def count(self, phase: str, status: str | None = None, op: str | None = None) -> int:
        return sum(
            n
            for (p, o, s), n in self.answers.items()
            if p == phase and (status is None or s == status) and (op is None or o == op)
        )

    def server_errors(self) -> Counter[str]:
        return Counter(
            {
                f"{s} {o}": n
                for (_, o, s), n in self.answers.items()
                if s.startswith("5") or s in ("hung", "refused")
            }
        )


class Client:
    """One user of the load: its own projects, so the last acknowledged name of each is known."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str], email: str) -> None:
        self.http = http
        self.headers = headers
        self.email = email
        self.names: dict[str, str] = {}  # project id -> last acknowledged name
        self.deleted: set[str] = set()  # acknowledged deletes
        # Writes answered 5xx or not at all: their outcome is unknown (a commit can land after
        # its request's budget), so either is right. Project id -> the names it may have, and
        # projects whose delete was not acknowledged (present with a name it may have, or gone).
        self.renamed_maybe: dict[str, set[str]] = {}
        self.deleted_maybe: dict[str, str] = {}
        self.jobs: list[str] = []
        self.jobs_maybe: list[tuple[str, dict[str, Any], dict[str, str]]] = []  # url, body, key
        self.counter = itertools.count()
        self.user_id = ""
        self.customer = ""
        self.subscription = ""
        self.events: dict[str, dict[str, Any]] = {}  # every event delivered to the webhook
        self.settled: set[str] = set()  # those answered 200


class Load:
    """Clients looping over a mix of operations until told to stop; answers go to `outcome`."""

    def __init__(
        self, clients: list[Client], *, agentic: bool = False, job_weight: float = 5
    ) -> None:
        self.clients = clients
        self.agentic = agentic
        self.job_weight = job_weight
        self.phase = "before"
        self.fault_ended_at: float | None = None
        self.outcome = Outcome()
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(c) for c in self.clients))

    async def _loop(self, client: Client) -> None:
        ops: list[tuple[Callable[[Client], Any], int]] = [
            # Deletes outweigh creates (above KEEP_PROJECTS only), so each client's projects
            # stay near KEEP_PROJECTS rather than drifting up.
            (self._read, 60), (self._create, 15), (self._rename, 15), (self._delete, 20),
            (self._login, 5),
            (self._job, self.job_weight), (self._portal, 3), (self._webhook, 5),
        ]  # fmt: skip
        choices, weights = zip(*ops, strict=True)
        while not self.stopping.is_set():
            op = random.choices(choices, weights)[0]
            await op(client)

    async def _call(self, client: Client, op: str, method: str, url: str, **kw: Any) -> Any:
        phase, started = self.phase, time.monotonic()
        try:
            response = await client.http.request(
                method, url, headers={**client.headers, **kw.pop("headers", {})},
                timeout=REQUEST_TIMEOUT_S, **kw,
            )  # fmt: skip
            status = str(response.status_code)
            if response.status_code >= 500:  # which problem: documented or not
                status += f" {_problem_code(response)}"
        except httpx.TimeoutException:
            response, status = None, "hung"
        except httpx.TransportError:
            response, status = None, "refused"  # the API itself was unreachable
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        self.outcome.answers[phase, op, status] += 1
        self.outcome.slowest_s[phase] = max(self.outcome.slowest_s[phase], elapsed)
        if status.startswith("503"):
            await asyncio.sleep(0.05)  # as a client honouring the answer would back off a bit
        return response

    async def _read(self, client: Client) -> None:
        await self._call(client, "read", "GET", "/api/v2/projects")

    async def _create(self, client: Client) -> None:
        name = f"{client.email} {next(client.counter)}"
        answer = await self._call(client, "write", "POST", "/api/v2/projects", json={"name": name})
        if answer is not None and answer.status_code == 201:
            client.names[answer.json()["id"]] = name
            self._written()

    async def _rename(self, client: Client) -> None:
        if not client.names:
            return
        project_id = random.choice(list(client.names))
        name = f"{client.email} {next(client.counter)} renamed"
        answer = await self._call(client, "write", "PATCH", f"/api/v2/projects/{project_id}",
                                  json={"name": name})  # fmt: skip
        if answer is not None and answer.status_code == 200:
            client.names[project_id] = name
            client.renamed_maybe.pop(project_id, None)
            self._written()
        elif answer is None or answer.status_code >= 500:
            client.renamed_maybe.setdefault(project_id, set()).add(name)

    async def _delete(self, client: Client) -> None:
        if len(client.names) <= KEEP_PROJECTS:
            return
        project_id = random.choice(list(client.names))
        answer = await self._call(client, "write", "DELETE", f"/api/v2/projects/{project_id}")
        if answer is not None and answer.status_code == 204:
            del client.names[project_id]
            client.deleted.add(project_id)
            self._written()
        elif answer is None or answer.status_code >= 500:
            client.deleted_maybe[project_id] = client.names.pop(project_id)

    async def _login(self, client: Client) -> None:
        await self._call(client, "login", "POST", "/api/v2/auth/login",
                         json={"email": client.email, "password": PASSWORD})  # fmt: skip

    async def _job(self, client: Client) -> None:
        if self.agentic:
            url, body = "/api/v2/generate/agentic", {"prompt": "Add a health endpoint"}
        else:
            url, body = "/api/v2/generate/fullstack", spec(2)
        key = {"idempotency-key": secrets.token_hex(16)}
        answer = await self._call(client, "job", "POST", url, json=body, headers=key)
        if answer is not None and answer.status_code == 202:
            client.jobs.append(answer.json()["id"])
        elif answer is None or answer.status_code >= 500:
            client.jobs_maybe.append((url, body, key))

    async def _portal(self, client: Client) -> None:
        """A Stripe call on every request (a subscriber's checkout is a 409 without one)."""
        await self._call(client, "portal", "POST", "/api/v2/billing/portal",
                         json={"return_url": BACK})  # fmt: skip

    async def _webhook(self, client: Client) -> None:
        """Mostly a new `checkout.session.completed`; now and then one delivered before."""
        if client.settled and random.random() < 0.2:
            payload = client.events[random.choice(list(client.settled))]
        else:
            payload = completed_event(client)
            client.events[payload["id"]] = payload
        body = json.dumps(payload).encode()
        answer = await self._call(client, "webhook", "POST", WEBHOOK, content=body,
                                  headers={"stripe-signature": sign(body),
                                           "content-type": "application/json"})  # fmt: skip
        if answer is not None and answer.status_code == 200:
            client.settled.add(payload["id"])

    def _written(self) -> None:
        if self.fault_ended_at is not None and self.outcome.first_write_after_s is None:
            self.outcome.first_write_after_s = time.monotonic() - self.fault_ended_at


def _problem_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code"))
    except ValueError:
        return "(not a problem document)"


def completed_event(client: Client) -> dict[str, Any]:
    return event("checkout.session.completed", {
        "id": f"cs_test_{secrets.token_hex(8)}", "object": "checkout.session",
        "client_reference_id": client.user_id, "customer": client.customer,
        "subscription": client.subscription,
    })  # fmt: skip


class Stack:
    """The processes under test; each can be killed and started again."""

    def __init__(self, tmp: Path, llm: ScriptedLLM) -> None:
        self.tmp = tmp
        self.db_port = free_port()
        self.db_dir = tmp / "mongodb"
        self.db_dir.mkdir()
        self.db_log = (tmp / "mongodb.log").open("ab")
        self.db: subprocess.Popen[bytes] | None = None
        self.redis = RedisServer("--appendonly", "yes", "--appendfsync", "always")
        self.workers: list[subprocess.Popen[bytes]] = []
        self.localstripe = LocalStripe()
        self.stripe_port = free_port()
        self.stripe: subprocess.Popen[bytes] | None = None
        self.env = {
            "MONGODB_URL": local_url(self.db_port), "MONGODB_DB": "chaos",
            "REDIS_URL": self.redis.url, "JWT_SECRET": secrets.token_urlsafe(48),
            "LOG_LEVEL": "info", "LLM_BASE_URL": llm.url, "LLM_API_KEY": "chaos",
            "LLM_MAX_RETRIES": "1", "LLM_TIMEOUT_S": "5", "QUOTA_FREE": "100000",
            "MAX_ACTIVE_JOBS_FREE": "100", "QUOTA_PRO": "100000", "MAX_ACTIVE_JOBS_PRO": "100",
            "JOB_HEARTBEAT_S": "1", "JOB_STALE_AFTER_S": "10", "JOB_REDELIVERY_S": "20",
            "JOB_REAPER_INTERVAL_S": "1", "JOB_MAX_ATTEMPTS": "2",
            **{f"RATE_LIMIT_{name}": "1000000/minute" for name in (
                "DEFAULT_USER", "DEFAULT_ANONYMOUS", "AUTH_LOGIN", "AUTH_REGISTER",
                "GENERATE_FULLSTACK", "GENERATE_AGENTIC", "STRIPE_WEBHOOK")},
            "STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_PRICE_PRO": PRICE_PRO, "STRIPE_PRICE_TEAM": PRICE_TEAM,
            "STRIPE_WEBHOOK_ABANDONED_AFTER_S": str(WEBHOOK_ABANDONED_AFTER_S),
            "HTTP_TIMEOUT_S": "3",
        }  # fmt: skip

    def start_stripe(self) -> None:
        """The Stripe-shaped front (`FakeStripe`, in a process of its own) before localstripe."""
        if self.localstripe.process is None:
            self.localstripe.start()
        log = (self.tmp / "stripe.log").open("ab")
        self.stripe = subprocess.Popen(
            [sys.executable, "-m", "tests.support.stripe", str(self.stripe_port),
             self.localstripe.url],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.stripe_port, timeout=20)
        self.env["STRIPE_API_BASE"] = f"http://127.0.0.1:{self.stripe_port}"

    def start_db(self) -> None:
        self.spawn_db()
        self.wait_for_db()

    def spawn_db(self) -> None:
        """From the main thread: the database dies with the thread that started it
        (`backend.dev` ties it to its parent), and a helper thread ends before the stack does."""
        self.db = start_secantusd(str(self.db_dir), self.db_port, self.db_log,
                                  extra=["--sync-on-commit"])  # fmt: skip

    def wait_for_db(self) -> None:
        assert self.db is not None
        wait_for_mongodb(local_url(self.db_port), self.db, timeout_s=60)

    def kill_db(self) -> None:
        assert self.db is not None
        self.db.kill()
        self.db.wait(10)

    def kill_redis(self) -> None:
        assert self.redis.process is not None
        self.redis.process.kill()
        self.redis.process.wait(10)
        self.redis.process = None

    def start_redis(self) -> None:
        self.redis.start()
        wait_for_port(self.redis.port)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.workers)}.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker", "--concurrency", "4"],
            cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def kill_worker(self) -> None:
        """`kill -9` of the first live worker, mid-job: no goodbye."""
        victim = next(w for w in self.workers if w.poll() is None)
        victim.kill()
        victim.wait(10)

    def stop_stripe(self) -> None:
        """Stripe's API goes away (`kill -9` of the front): its port refuses connections."""
        assert self.stripe is not None
        self.stripe.kill()
        self.stripe.wait(10)

    def close(self) -> None:
        if self.stripe is not None and self.stripe.poll() is None:
            self.stripe.kill()
        self.localstripe.stop()
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if self.db is not None and self.db.poll() is None:
            self.db.terminate()
            self.db.wait(30)
        self.redis.close()
        self.db_log.close()


@contextmanager
def stack_running(tmp: Path, llm: ScriptedLLM) -> Iterator[tuple[Stack, str]]:
    stack = Stack(tmp, llm)
    with ExitStack() as exits:
        exits.callback(stack.close)
        stack.start_redis()
        stack.start_db()
        stack.start_stripe()
        base = exits.enter_context(api_server(free_port(), stack.env, log=tmp / "api.log"))
        for _ in range(2):
            stack.start_worker()
        yield stack, base


async def sign_up(http: httpx.AsyncClient, count: int, stripe: LocalStripe) -> list[Client]:
    """New users, each with a Stripe customer (from a checkout) and an active subscription."""
    clients = []
    for _ in range(count):
        email = f"chaos-{secrets.token_hex(4)}@example.com"
        for _ in range(50):  # a 503 right after a fault is the answer to try again
            created = await http.post(
                "/api/v2/auth/register", json={"email": email, "password": PASSWORD}
            )
            if created.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert created.status_code == 201, created.text
        tokens = (await http.post("/api/v2/auth/login",
                                  json={"email": email, "password": PASSWORD})).json()  # fmt: skip
        client = Client(http, {"authorization": f"Bearer {tokens['access_token']}"}, email)
        client.user_id = (await http.get("/api/v2/auth/me", headers=client.headers)).json()["id"]
        client.customer = await customer_id(http, client.headers, stripe)
        client.subscription = (await asyncio.to_thread(stripe.subscribe, client.customer))["id"]
        clients.append(client)
    return clients


async def verify(http: httpx.AsyncClient, clients: list[Client], db_url: str) -> dict[str, Any]:
    """Read everything back once the stack is whole again."""
    acknowledged = lost = stale = listed_stale = undeleted = 0
    in_doubt = doubtful = applied = 0
    for client in clients:
        listed: dict[str, str] = {}
        page = 1
        while True:
            answer = await http.get("/api/v2/projects", params={"page": page, "limit": 100},
                                    headers=client.headers)  # fmt: skip
            if answer.status_code != 200:
                break  # what is missing from `listed` counts as stale below
            body = answer.json()
            listed.update({p["id"]: p["name"] for p in body["data"]})
            if page >= body["meta"]["total_pages"]:
                break
            page += 1
        for project_id, name in client.names.items():
            acknowledged += 1
            maybe = {name, *client.renamed_maybe.get(project_id, ())}
            found = await http.get(f"/api/v2/projects/{project_id}", headers=client.headers)
            if found.status_code != 200:
                lost += 1
            elif found.json()["name"] not in maybe:
                stale += 1
            if listed.get(project_id) not in maybe:
                listed_stale += 1
            if project_id in client.renamed_maybe:
                in_doubt += 1
                applied += found.status_code == 200 and found.json()["name"] != name
        for project_id, name in client.deleted_maybe.items():
            in_doubt += 1
            maybe = {name, *client.renamed_maybe.get(project_id, ())}
            found = await http.get(f"/api/v2/projects/{project_id}", headers=client.headers)
            if found.status_code == 404 and project_id not in listed:
                applied += 1
            elif found.status_code != 200 or found.json()["name"] not in maybe:
                doubtful += 1  # neither outcome: counted as a failure below
        for project_id in client.deleted:
            found = await http.get(f"/api/v2/projects/{project_id}", headers=client.headers)
            undeleted += found.status_code != 404 or project_id in listed
        for url, body, key in client.jobs_maybe:
            # What the Idempotency-Key is for: the same submission again answers the job it
            # made, if it made one (and makes one now if it did not, which the checks count).
            in_doubt += 1
            asked = datetime.now(UTC)
            for _ in range(3):  # the workers may still be committing the load's last jobs
                again = await http.post(url, json=body, headers={**client.headers, **key})
                if again.status_code < 500:
                    break
                await asyncio.sleep(1)
            if again.status_code == 202:
                client.jobs.append(again.json()["id"])
                applied += datetime.fromisoformat(again.json()["created_at"]) < asked
            elif again.status_code >= 500:
                doubtful += 1
    jobs = await _jobs_ended(http, clients)
    quota_off = 0
    for client in clients:
        usage = (await http.get("/api/v2/generate/usage", headers=client.headers)).json()
        kept = sum(1 for j in jobs.values() if j["owner"] == client.email
                   and j["status"] not in ("failed", "canceled"))  # fmt: skip
        quota_off += usage["used"] != kept or usage["active_jobs"] != 0
    webhooks = await _webhooks_processed(http, clients, db_url)
    return {
        "acknowledged": acknowledged, "lost": lost, "stale": stale, "listed_stale": listed_stale,
        "deleted": sum(len(c.deleted) for c in clients), "undeleted": undeleted,
        "in_doubt": in_doubt, "in_doubt_applied": applied, "in_doubt_wrong": doubtful,
        "jobs": Counter(j["status"] + (f" ({j['code']})" if j["code"] else "")
                        for j in jobs.values()),
        "quota_off": quota_off, "project_count_off": await _project_counts_off(db_url),
        **webhooks,
    }  # fmt: skip


async def _project_counts_off(db_url: str) -> int:
    """Users whose project counter (the cap's) differs from the projects they own, once every
    job has ended: a slot taken by a job and never used or given back shows here."""

    def count() -> int:
        with MongoClient(db_url, serverSelectionTimeoutMS=5000) as client:
            db = client["chaos"]
            owned = {row["_id"]: row["n"] for row in db["projects"].aggregate(
                [{"$group": {"_id": "$owner_id", "n": {"$sum": 1}}}]
            )}  # fmt: skip
            return sum(
                user.get("project_count", 0) != owned.get(str(user["_id"]), 0)
                for user in db["users"].find({}, {"project_count": 1})
            )

    return await asyncio.to_thread(count)


async def _webhooks_processed(
    http: httpx.AsyncClient, clients: list[Client], db_url: str
) -> dict[str, Any]:
    """Deliver again, as Stripe does, every event not answered 200; then count what is stored."""
    first_unsettled = sum(1 for c in clients for event_id in c.events if event_id not in c.settled)
    redeliveries = 0
    deadline = time.monotonic() + REDELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        pending = [(c, i) for c in clients for i in c.events if i not in c.settled]
        if not pending:
            break
        for client, event_id in pending:
            try:
                answer = await deliver(http, client.events[event_id])
            except httpx.TransportError:  # a timeout included: Stripe delivers again later
                continue
            finally:
                redeliveries += 1
            # 200 with `duplicate` may still be a handling cut off by the fault (the event is
            # claimed, never finished): the stored status below tells; deliver again until it is
            # taken again (after WEBHOOK_ABANDONED_AFTER_S) and answered `duplicate: false`.
            if answer.status_code == 200 and (
                not answer.json()["duplicate"] or await _processed(db_url, [event_id]) == 1
            ):
                client.settled.add(event_id)
        await asyncio.sleep(2)
    delivered = [event_id for c in clients for event_id in c.events]
    return {
        "webhooks": len(delivered),
        "webhooks_unsettled": first_unsettled,
        "redeliveries": redeliveries,
        "webhooks_processed": await _processed(db_url, delivered),
    }


async def _processed(db_url: str, event_ids: list[str]) -> int:
    """How many of these events the database holds as processed (read directly: the admin API
    would do, but needs an admin)."""

    def count() -> int:
        with MongoClient(db_url, serverSelectionTimeoutMS=5000) as client:
            found = client["chaos"]["stripe_events"].count_documents(
                {"_id": {"$in": event_ids}, "status": "processed"}
            )
        return int(found)

    return await asyncio.to_thread(count)


async def _jobs_ended(http: httpx.AsyncClient, clients: list[Client]) -> dict[str, Any]:
    ended: dict[str, Any] = {}
    deadline = time.monotonic() + JOB_END_TIMEOUT_S
    pending = [(c, job_id) for c in clients for job_id in c.jobs]
    while pending and time.monotonic() < deadline:
        still = []
        for client, job_id in pending:
            job = (await http.get(f"/api/v2/generate/jobs/{job_id}", headers=client.headers)).json()
            if job["status"] in ("queued", "running"):
                still.append((client, job_id))
            else:
                code = (job.get("error") or {}).get("code")
                ended[job_id] = {"owner": client.email, "status": job["status"], "code": code}
        pending = still
        if pending:
            await asyncio.sleep(1)
    for client, job_id in pending:  # never ended: the defect this harness is looking for
        ended[job_id] = {"owner": client.email, "status": "NOT ENDED", "code": None}
    return ended


async def scenario(
    name: str,
    stack: Stack,
    base: str,
    inject: Callable[[], None],
    recover: Callable[[], Awaitable[None]],
    *,
    outage_s: float,
    clients: int,
    agentic: bool = False,
) -> dict[str, Any]:
    """Load before (5 s), the fault for `outage_s`, recovery, load after (15 s); then verify.

    The API's rate-limit metrics are read at each turn: hits counted per process (Redis absent)
    during the fault, and none in the last 10 s, show the limits went back to Redis by themselves.
    """
    limits = httpx.Limits(max_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as http:
        users = await sign_up(http, clients, stack.localstripe)
        load = Load(users, agentic=agentic)
        running = asyncio.create_task(load.run())
        await asyncio.sleep(5)
        local = [await _local_hits(http)]
        load.phase = "outage"
        inject()
        await asyncio.sleep(outage_s)
        await recover()
        local.append(await _local_hits(http))
        load.fault_ended_at = time.monotonic()
        load.phase = "after"
        await asyncio.sleep(5)
        local.append(await _local_hits(http))
        await asyncio.sleep(10)
        local.append(await _local_hits(http))
        degraded = await _degraded(http)
        load.stopping.set()
        await running
        checked = await verify(http, users, local_url(stack.db_port))
    return {"name": name, "outage_s": outage_s, "outcome": load.outcome,
            "local_hits": (local[1] - local[0], local[3] - local[2]), "degraded": degraded,
            **checked}  # fmt: skip


async def _metrics(http: httpx.AsyncClient) -> dict[str, float]:
    for _ in range(50):  # the API's metrics are the API's: wait out a 503 of its own
        answer = await http.get("/metrics")
        if answer.status_code == 200:
            break
        await asyncio.sleep(0.2)
    answer.raise_for_status()
    found = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


async def _local_hits(http: httpx.AsyncClient) -> float:
    return (await _metrics(http)).get("rate_limit_local_hits_total", 0.0)


async def _degraded(http: httpx.AsyncClient) -> dict[str, float]:
    """Which parts still bypass Redis (`redis_degraded`, 1 while they do)."""
    return {name.partition('"')[2].rstrip('"}'): value
            for name, value in (await _metrics(http)).items()
            if name.startswith("redis_degraded{")}  # fmt: skip


def _sample(api_pid: int, ports: dict[str, int]) -> dict[str, float]:
    """The API process's RSS (MiB), open files, and its connections to each server."""
    status = Path(f"/proc/{api_pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    found: dict[str, float] = {"rss_mib": rss / 1024, "fds": len(os.listdir(f"/proc/{api_pid}/fd"))}
    for name, port in ports.items():
        out = subprocess.run(["ss", "-Htnp", "state", "established", f"dport = :{port}"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        found[f"{name}_connections"] = sum(f"pid={api_pid}," in line for line in out.splitlines())
    return found


async def soak(stack: Stack, base: str, api_pid: int, *, seconds: int, clients: int) -> str:
    """The mixed load with no fault for `seconds`; the API's resources sampled every 10 s."""
    samples: list[tuple[float, dict[str, float]]] = []
    ports = {"redis": stack.redis.port, "mongodb": stack.db_port}
    limits = httpx.Limits(max_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as http:
        users = await sign_up(http, clients, stack.localstripe)
        # One submission in 400 requests: about what two workers on 2 cores sustain beside
        # the rest of the load (at 1 in 20 the queue only grew and transactions timed out).
        load = Load(users, job_weight=0.25)
        running = asyncio.create_task(load.run())
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            samples.append((elapsed, await asyncio.to_thread(_sample, api_pid, ports)))
            await asyncio.sleep(10)
        load.stopping.set()
        await running
        minute = next((s for t, s in samples if t >= 60), samples[0][1])
        last = samples[-1][1]
        answers = load.outcome.count("before")
        errors = load.outcome.server_errors()
        rss_by_minute = [f"{s['rss_mib']:.0f}" for t, s in samples if int(t) % 60 < 10]
        print("\n".join([
            f"### soak ({seconds} s, no fault)",
            f"- load: {answers:,} answers, {sum(errors.values())} 5xx/hung/refused"
            f" ({dict(errors) or 'none'}); slowest {load.outcome.slowest_s['before']:.2f} s",
            "- the API process after 1 min → at the end (peak): " + ", ".join(
                f"{key} {minute[key]:.0f} → {last[key]:.0f} ({peak:.0f})"
                for key in last if (peak := max(s[key] for _, s in samples)) is not None),
            f"- RSS (MiB) at each minute: {' '.join(rss_by_minute)}",
        ]), flush=True)  # fmt: skip
        checked = await verify(http, users, local_url(stack.db_port))
    return (
        f"- acknowledged projects read back: {checked['acknowledged'] - checked['lost']:,}"
        f" of {checked['acknowledged']:,}; deletes still gone:"
        f" {checked['deleted'] - checked['undeleted']:,} of {checked['deleted']:,};"
        f" {_doubt(checked)};"
        f" jobs: {dict(checked['jobs'])}; users whose quota is"
        f" off: {checked['quota_off']}, whose project count is off:"
        f" {checked['project_count_off']}\n"
        f"- webhook events: {checked['webhooks']:,} delivered, {checked['webhooks_unsettled']}"
        f" not answered 200 during the load; stored as processed:"
        f" {checked['webhooks_processed']:,} of {checked['webhooks']:,}\n"
    )


def _doubt(row: dict[str, Any]) -> str:
    return (
        f"writes in doubt (answered 5xx or not at all): {row['in_doubt']}, applied"
        f" {row['in_doubt_applied']}, in neither state {row['in_doubt_wrong']}"
    )


def report(row: dict[str, Any]) -> str:
    outcome: Outcome = row["outcome"]
    phases = ", ".join(
        f"{phase}: {outcome.count(phase):,} answers, slowest {outcome.slowest_s[phase]:.2f} s"
        for phase in ("before", "outage", "after")
    )
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.server_errors().items())) or "none"
    recovered = (
        f"{outcome.first_write_after_s:.2f} s" if outcome.first_write_after_s is not None else "—"
    )
    jobs = ", ".join(f"{k} {v}" for k, v in sorted(row["jobs"].items())) or "none"
    during, after = row["local_hits"]
    degraded = ", ".join(name for name, on in row["degraded"].items() if on) or "nothing"
    return (
        f"### {row['name']}\n- load: {phases}\n- 5xx, hangs and refusals: {errors}\n"
        f"- first acknowledged write after the fault ended: {recovered}\n"
        f"- acknowledged projects read back: {row['acknowledged'] - row['lost']:,} of"
        f" {row['acknowledged']:,} (lost {row['lost']}, stale by id {row['stale']}, stale in"
        f" the cached list {row['listed_stale']}); acknowledged deletes still gone:"
        f" {row['deleted'] - row['undeleted']:,} of {row['deleted']:,}; {_doubt(row)}\n"
        f"- jobs: {jobs}; users whose quota is off:"
        f" {row['quota_off']}, whose project count is off: {row['project_count_off']}\n"
        f"- webhook events: {row['webhooks']:,} delivered, {row['webhooks_unsettled']} of them"
        f" not answered 200 during the load and delivered again after it"
        f" ({row['redeliveries']} redeliveries); stored as processed:"
        f" {row['webhooks_processed']:,} of {row['webhooks']:,}\n"
        f"- rate-limit hits counted per process (Redis bypassed): {during:.0f} during the fault,"
        f" {after:.0f} in the last 10 s; bypassing Redis at the end: {degraded}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--only", nargs="*", choices=SCENARIOS)
    parser.add_argument("--soak", type=int, default=0, help="seconds of fault-free load; 0 skips")
    args = parser.parse_args()
    chosen = SCENARIOS if args.only is None else args.only
    started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{started} · {machine} · {args.clients} clients", flush=True)
    llm = ScriptedLLM().start()
    logs = Path(tempfile.mkdtemp(prefix="devora-chaos-"))
    print(f"logs of the database and the workers: {logs}", flush=True)
    with stack_running(logs, llm) as (stack, base):

        async def restart_redis() -> None:
            await asyncio.to_thread(stack.start_redis)

        async def restart_db() -> None:
            stack.spawn_db()
            await asyncio.to_thread(stack.wait_for_db)

        async def replace_worker() -> None:
            stack.start_worker()

        async def restart_stripe() -> None:
            await asyncio.to_thread(stack.start_stripe)

        def break_llm() -> None:  # a 500, then no answer at all (a timeout), and again
            llm.reset(*[Reply(status=500), Reply(hang=True)] * 10_000)

        async def nothing() -> None:
            return None

        runs: dict[str, tuple[Callable[[], None], Callable[[], Awaitable[None]], float]] = {
            "redis": (stack.kill_redis, restart_redis, 10),
            "database": (stack.kill_db, restart_db, 8),
            "worker": (stack.kill_worker, replace_worker, 3),
            "stripe": (stack.stop_stripe, restart_stripe, 10),
            "llm": (break_llm, nothing, 10),  # the model server fails throughout
        }
        for name in chosen:
            inject, recover, outage_s = runs[name]
            row = asyncio.run(scenario(name, stack, base, inject, recover, outage_s=outage_s,
                                       clients=args.clients, agentic=name == "llm"))  # fmt: skip
            print(report(row), flush=True)
        if args.soak:
            api_pid = _listening_pid(int(base.rsplit(":", 1)[1]))
            print(asyncio.run(soak(stack, base, api_pid, seconds=args.soak,
                                   clients=args.clients)), flush=True)  # fmt: skip
    llm.server.stop()


if __name__ == "__main__":
    main()
