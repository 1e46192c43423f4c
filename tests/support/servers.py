"""Real local servers and processes the suite starts on loopback: no mocks of our own code."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from backend.config import Settings
from backend.dev import local_url, start_secantusd, stop, wait_for_mongodb
from backend.http_protocol import SERVER_OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """A throw-away `redis-server` on a free loopback port; can be stopped and restarted."""

    def __init__(self, *extra: str) -> None:
        """`extra`: more redis-server options, e.g. a memory limit and policy."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="devora-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.extra = list(extra)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "yes",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MongoServer:
    """A throw-away `secantusd-py` (MongoDB wire protocol) on a free loopback port: in memory,
    or `on_disk` (synced on every commit, as `make run` keeps it) to outlive a `kill -9`.

    Start it from the main thread: it dies with the thread that started it (`backend.dev`)."""

    def __init__(self, cache_size: str = "512M", *, on_disk: bool = False) -> None:
        self.port = free_port()
        self.cache_size = cache_size
        self.dir = Path(tempfile.mkdtemp(prefix="secantusd-")) if on_disk else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return local_url(self.port)

    def start(self) -> "MongoServer":
        self.spawn()
        assert self.process is not None
        wait_for_mongodb(self.url, self.process, timeout_s=60)
        return self

    def spawn(self) -> None:
        """Start the process (on the same port and data as before, after a `kill`)."""
        extra = ["--cache-size", self.cache_size]
        if self.dir is not None:
            extra.append("--sync-on-commit")
        storage = str(self.dir) if self.dir is not None else ":memory:"
        self.process = start_secantusd(storage, self.port, subprocess.DEVNULL, extra=extra)

    def kill(self) -> None:
        """`kill -9`: no goodbye to the clients, nothing flushed that was not already."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


class ThreadedServer:
    """An ASGI app served by uvicorn on a loopback port (a free one unless given), in a thread
    of its own."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                interface="asgi3",
                **SERVER_OPTIONS,  # type: ignore[arg-type]
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a real loopback port (for peers that call us, like localstripe)."""
    server = ThreadedServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()


class Worker:
    """A real `python -m backend worker` process on the app's database and Redis."""

    def __init__(self, settings: Settings, concurrency: int = 4, **env: str) -> None:
        url = settings.mongodb_url.get_secret_value()  # type: ignore[union-attr]
        redis = settings.redis_url.get_secret_value()  # type: ignore[union-attr]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the fixture
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env={**os.environ, "MONGODB_URL": url, "MONGODB_DB": settings.mongodb_db,
                 "REDIS_URL": redis, "LOG_LEVEL": "warning", "JOB_HEARTBEAT_S": "0.2",
                 "JOB_STALE_AFTER_S": "1.5", "JOB_REAPER_INTERVAL_S": "0.3",
                 "SANDBOX_COMMAND": "", **env},
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> str:
        """SIGTERM and wait; what it logged (to a file: a pipe nobody reads fills and
        blocks the worker)."""
        self.process.terminate()
        self.process.wait(60)
        return self.said()

    def said(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")
