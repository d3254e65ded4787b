"""Structured logs: one JSON object per line, with the request id of the request in flight.

Our own loggers (structlog) render and write each line themselves: a request's log line costs
a few microseconds instead of a pass through the standard library's logging machinery. The
libraries' logs (uvicorn, SQLAlchemy) go through `logging`, rendered the same way.
"""

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger


class NamedWriter(structlog.WriteLogger):
    """Writes rendered lines to a stream, and knows the name it was asked for by."""

    def __init__(self, name: str, file: TextIO) -> None:
        super().__init__(file)
        self.name = name


def _add_logger_name(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    event.setdefault("logger", getattr(logger, "name", "clientdesk"))
    return event


def _json(event: EventDict, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def configure_logging(*, level: str = "INFO", fmt: str = "json") -> None:
    """Our logs and the libraries' (uvicorn, SQLAlchemy), each line one JSON object (or a
    readable line with `fmt="console"`), on standard error."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            *shared,
            _add_logger_name,
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=lambda *args: NamedWriter(args[0] if args else "clientdesk", sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our own "request" line says more; uvicorn writes its access log only when this logger
    # has a handler somewhere up the tree, so cut it off.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
