"""A TCP proxy in front of a MongoDB-wire server that loses an acknowledgement on purpose."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import bson


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
