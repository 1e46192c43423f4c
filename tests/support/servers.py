"""Real local servers the suite starts on loopback: no mocks of our own code."""

import asyncio
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bson
import uvicorn

from backend.dev import local_url, start_secantusd, stop, wait_for_mongodb
from backend.http_protocol import SERVER_OPTIONS


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


class LosingProxy:
    """A TCP proxy in front of a MongoDB-wire server that can lose one acknowledgement.

    Armed with `lose_next_ack(command, collection, crash)`, it forwards the next such command,
    holds the server's answer back, awaits `crash()` (which kills the server, say) and cuts the
    client's connection: to the driver, the write happened and its answer never came.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.lost: list[dict[str, Any]] = []  # the commands whose answers were held back
        self._armed: tuple[str, str, Callable[[], Awaitable[None]]] | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> "LosingProxy":
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"directConnection": "true", **options}.items())
        return f"mongodb://127.0.0.1:{self.port}/?{query}"

    def lose_next_ack(
        self, command: str, collection: str, crash: Callable[[], Awaitable[None]]
    ) -> None:
        self._armed = (command, collection, crash)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _connection(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_out.close()
            return
        held: dict[int, Callable[[], Awaitable[None]]] = {}  # request id → the crash it arms

        async def to_server() -> None:
            while message := await _wire_message(client_in):
                command = _command(message)
                if self._armed and command and _matches(command, *self._armed[:2]):
                    held[int.from_bytes(message[4:8], "little")] = self._armed[2]
                    self.lost.append(command)
                    self._armed = None
                server_out.write(message)
                await server_out.drain()

        async def to_client() -> None:
            while message := await _wire_message(server_in):
                crash = held.pop(int.from_bytes(message[8:12], "little"), None)
                if crash is not None:
                    await crash()
                    return  # the answer is dropped with the connection
                client_out.write(message)
                await client_out.drain()

        pumps = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_out, server_out):
                writer.close()


async def _wire_message(stream: asyncio.StreamReader) -> bytes | None:
    """One MongoDB wire-protocol message (its length leads), or None at the end."""
    try:
        head = await stream.readexactly(4)
        return head + await stream.readexactly(int.from_bytes(head, "little") - 4)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def _command(message: bytes) -> dict[str, Any] | None:
    """The command document of an OP_MSG (opcode 2013) whose first section is its body."""
    if int.from_bytes(message[12:16], "little") != 2013 or message[20] != 0:
        return None
    size = int.from_bytes(message[21:25], "little")
    return dict(bson.decode(message[21 : 21 + size]))


def _matches(command: dict[str, Any], name: str, collection: str) -> bool:
    return next(iter(command)) == name and command[name] == collection


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
