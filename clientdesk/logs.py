"""Structured logs: one JSON object per line, with the request id of the request in flight.

Our own loggers (structlog) render and write each line themselves: a request's log line costs
a few microseconds instead of a pass through the standard library's logging machinery. The
libraries' logs (uvicorn, SQLAlchemy) go through `logging`, rendered the same way.
"""

import logging
import sys
import traceback
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


DATABASE_MODULES = ("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite")


def redact_database_errors(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """Database errors logged without their messages: a driver's message may quote the values
    of the statement (asyncpg's "invalid input for query argument $1: 'secret'"). The trace
    keeps every frame, each exception's class, its SQLSTATE and the SQL (which binds values,
    never holds them)."""
    exc_info = event.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        error: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        error = exc_info[1]
    else:
        return event
    if error is None or not any(_is_database_error(e) for e in _chain(error)):
        return event
    del event["exc_info"]
    event["exception"] = redacted_traceback(error)
    return event


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_database_error(error: BaseException) -> bool:
    return type(error).__module__.split(".")[0] in DATABASE_MODULES


def redacted_traceback(error: BaseException) -> str:
    """A traceback of `error` and its causes with the database errors' messages withheld."""
    parts = []
    for link in reversed(_chain(error)):
        frames = "".join(traceback.format_tb(link.__traceback__))
        name = f"{type(link).__module__}.{type(link).__qualname__}"
        if _is_database_error(link):
            details = [f"sqlstate={code}"] if (code := _sqlstate(link)) else []
            statement = getattr(link, "statement", None)
            if isinstance(statement, str):
                details.append(f"[SQL: {statement}]")
            text = " ".join(["(message withheld: it may quote values)", *details])
        else:
            text = str(link)
        parts.append(f"Traceback (most recent call last):\n{frames}{name}: {text}\n")
    return "\nThe above exception led to the following:\n\n".join(parts)


def _sqlstate(error: BaseException) -> str | None:
    for candidate in (error, getattr(error, "orig", None), error.__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


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
            redact_database_errors,
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
                redact_database_errors,
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
