"""uvicorn's httptools protocol with bounds on a request's head, which it otherwise reads
without limit: an unbounded head is buffered whole and parsed on the event loop.

Served with `--http backend.http_protocol:BoundedHttpTools` (compose) or `SERVER_OPTIONS`
(`make run`, the suite's servers).
"""

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 32 * 1024  # request line and headers together
MAX_HEADERS = 100

_TOO_LARGE = b"Request header fields too large."

# How every server of ours runs uvicorn. Proxy headers are off: the client address comes
# from `TRUSTED_PROXIES` (backend/client_ip.py), never from a header anyone can send.
SERVER_OPTIONS = {"http": "backend.http_protocol:BoundedHttpTools", "proxy_headers": False}


class BoundedHttpTools(HttpToolsProtocol):
    """Answers 431 and closes once a request's head passes `MAX_HEAD_BYTES` bytes or
    `MAX_HEADERS` header lines. Counted as bytes arrive, so nothing large is buffered: the
    parser's callbacks count the head exactly, and while a head is still incomplete every
    byte read is counted too (a single huge header never reaches a callback)."""

    _parsed = 0  # bytes of URL and headers the parser has handed over
    _read = 0  # bytes read while the head was incomplete
    _in_head = False
    _too_large = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed = self._read = 0
        self._in_head = True

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
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._too_large:
            return
        super().data_received(data)
        if self._in_head and not self._too_large:
            self._read += len(data)
            if self._read > MAX_HEAD_BYTES:
                self._too_large = True
                self.send_400_response("")

    def _check(self) -> None:
        if self._too_large or self._parsed > MAX_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge  # the parser stops; uvicorn answers through send_400_response

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            return super().send_400_response(msg)
        if self.transport.is_closing():
            return
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(_TOO_LARGE)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _TOO_LARGE,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


class _HeadTooLarge(Exception):
    pass
