"""structlog set-up: JSON lines in production pipelines, readable lines on a laptop."""

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
import structlog

from backend.config import LogFormat, Settings

# The id of the request being served, set by the edge middleware: a bare ContextVar, not
# structlog's bind/unbind pair, which costs several times more on every request.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def configure_logging(settings: Settings) -> None:
    """Configure structlog (and the stdlib root logger) for this process."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    # JSON lines go out as orjson's bytes, written straight to stdout's buffer (structlog's
    # fast path): the access log runs on every request.
    is_json = settings.log_format is LogFormat.JSON
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=orjson.dumps)
        if is_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    factory: structlog.typing.WrappedLogger = (
        structlog.BytesLoggerFactory(sys.stdout.buffer)
        if is_json
        else structlog.PrintLoggerFactory(sys.stdout)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stdout, force=True)


class AccessLog:
    """The line every HTTP request leaves, at info.

    In JSON it is rendered here, with the fields structlog would give it (event, level, an ISO
    UTC timestamp and the request id): structlog's bound-logger pipeline costs several times
    more a line, on every request. The console format, for laptops, goes through structlog as
    every other line does.
    """

    def __init__(self, settings: Settings) -> None:
        self.enabled = logging.getLevelNamesMapping()[settings.log_level.upper()] <= logging.INFO
        self.is_json = settings.log_format is LogFormat.JSON
        self._out = sys.stdout.buffer if self.is_json else None
        self._log = structlog.get_logger("devora.http")

    def request(self, request_id: str, **fields: object) -> None:
        if not self.enabled:
            return
        if self._out is None:
            self._log.info("request", **fields)  # the request id comes from REQUEST_ID
            return
        line = {
            "event": "request",
            "level": "info",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "request_id": request_id,
            **fields,
        }
        self._out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        self._out.flush()
