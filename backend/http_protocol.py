"""uvicorn's httptools protocol with bounds on a request's head, which it otherwise reads
without limit in size or time: an unbounded head is buffered whole and parsed on the event
loop, and a head sent a byte at a time holds a connection open for as long as it lasts.

Served with `--http backend.http_protocol:BoundedHttpTools` (compose) or `SERVER_OPTIONS`
(`make run`, the suite's servers). It marks each request's scope with `BOUNDED_HEAD`; in
production the app answers 503 to a request without it (backend/middleware.py), so a plain
`uvicorn backend.main:app` cannot serve unbounded heads unnoticed.
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 32 * 1024  # request line and headers together
MAX_HEADERS = 100
HEAD_TIMEOUT_S = 10.0  # from a connection's start, or a head's first byte, to its end

# The ASGI scope extension saying a request came through this protocol.
BOUNDED_HEAD = "devora.bounded_head"

_TOO_LARGE = b"Request header fields too large."
_TOO_SLOW = b"Request headers not received in time."

# How every server of ours runs uvicorn. Proxy headers are off: the client address comes
# from `TRUSTED_PROXIES` (backend/client_ip.py), never from a header anyone can send.
SERVER_OPTIONS = {"http": "backend.http_protocol:BoundedHttpTools", "proxy_headers": False}


class BoundedHttpTools(HttpToolsProtocol):
    """Answers 431 and closes once a request's head passes `MAX_HEAD_BYTES` bytes or
    `MAX_HEADERS` header lines, and 408 once it is still incomplete `head_timeout_s` after
    its first byte (or after the connection opened).

    Only the head's own bytes count, never the previous request's body sharing a read with
    it: the parser's callbacks count what it has handed over, and while a head is incomplete
    every later read counts whole (it is all head), the read it began in only through the
    callbacks (the rest of that read may be the previous request's). Nothing larger than the
    limit plus one read is ever buffered. A head that arrives in one read costs no timer.
    """

    head_timeout_s = HEAD_TIMEOUT_S

    _parsed = 0  # bytes of URL and headers the parser has handed over for this head
    _fed = 0  # bytes of this head known to have been read: a lower bound, as `_parsed`
    _in_head = False
    _began = False  # a head began during the current read
    _too_large = False
    _upgraded = False  # the connection is a WebSocket's now
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {BOUNDED_HEAD: {}}
        self._parsed = 0
        self._in_head = self._began = True

    def on_url(self, url: bytes) -> None:
        self._parsed += len(url)
        self._check()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed += len(name) + len(value) + 4
        if len(self.headers) >= MAX_HEADERS:
            self._too_large = True
        self._check()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._check()
        if self._head_timer is not None:
            self._stop_head_timer()
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        self._upgraded = True
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        if self._too_large:
            return
        self._began = False
        super().data_received(data)
        if self._too_large or self._upgraded:
            return
        if self._in_head:
            self._fed = self._parsed if self._began else self._fed + len(data)
            if self._fed > MAX_HEAD_BYTES:
                self._too_large = True
                self._refuse(431, _TOO_LARGE)
                return
        elif self.cycle is not None and not self.cycle.response_complete:
            return  # a request is in progress: its body is the app's to wait for
        # A head is incomplete, or an idle connection sent only the empty lines allowed before
        # one, which stopped uvicorn's keep-alive timer: either way a head is now due.
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _check(self) -> None:
        if self._too_large or self._parsed > MAX_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge  # the parser stops; uvicorn answers through send_400_response

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # we stopped reading (pipelining), not the client
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        elif self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # the request in progress is answered, then closed
        elif self._in_head:
            self._refuse(408, _TOO_SLOW)
        else:
            self.transport.close()  # nothing asked: nothing to answer

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            return super().send_400_response(msg)
        self._refuse(431, _TOO_LARGE)

    def _refuse(self, status: int, text: bytes) -> None:
        if self.transport.is_closing():
            return
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(text)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                text,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


class _HeadTooLarge(Exception):
    pass
