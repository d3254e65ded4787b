"""Unexpected errors logged while the tests run fail the run.

An exception the server did not handle is masked for the caller (INTERNAL_SERVER_ERROR, or a
plain 500) and logged in full; a test that only looks at the response can miss it. So every
error logged during a test is collected, in process and by server processes:

- structlog events at level error or critical (`resolver_failed` from gql/errors.py
  ErrorMasking, `background_jobs_failed`, any `log.exception`), whatever structlog's
  configuration at the time (tests and the CLI reconfigure it);
- records of the standard library's `logging` at ERROR or above (uvicorn's "Exception in ASGI
  application", asyncio's "Task exception was never retrieved", SQLAlchemy's pool);
- lines of `clientdesk serve` processes (tests/servers.py) that ServerProcess.failures() finds.

A test during which such an error was logged errors at teardown, with the log lines. A test that
provokes one on purpose says so with `@pytest.mark.logs_errors`. Server lines read after their
test ended are reported at the end of the session (and fail it).
"""

import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

MARKER = "logs_errors"
ERROR_METHODS = frozenset({"error", "critical", "exception", "fatal", "err"})
ERROR_EVENTS = frozenset({"resolver_failed", "background_jobs_failed"})


@dataclass(frozen=True, slots=True)
class Logged:
    """One error logged during the tests."""

    test: str | None  # node id of the test running when it was logged (or read)
    source: str  # "structlog", "logging" or a server's URL
    text: str


class Collector:
    """The errors logged so far, and the test running now."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logged: list[Logged] = []
        self.reported = 0  # `logged[:reported]` were dealt with, test by test
        self.current: str | None = None
        self.exempt: set[str] = set()  # tests marked logs_errors

    def add(self, source: str, text: str, *, test: str | None = None) -> None:
        with self.lock:
            self.logged.append(Logged(test or self.current, source, text))

    def take(self) -> list[Logged]:
        """What was logged since the last call."""
        with self.lock:
            new, self.reported = self.logged[self.reported :], len(self.logged)
        return new

    def add_line(self, server: str, line: str, *, started_by: str | None) -> None:
        """A failure line of a server process (tests/servers.py), unless a test marked
        logs_errors started the server."""
        if started_by is None or started_by not in self.exempt:
            self.add(server, line.rstrip()[:2000])


COLLECTOR = Collector()


def _exception_summary(exc_info: Any) -> str:
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info and exc_info[0] is not None:
        return f" {exc_info[0].__name__}: {exc_info[1]}"[:2000]
    return ""


def _plain_traceback(exc_info: Any) -> str | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info and exc_info[0] is not None:
        return "".join(traceback.format_exception(*exc_info))
    return None


def capture_structlog(logger: Any, method_name: str, event_dict: Any) -> Any:
    """A structlog processor that collects error events and passes every event on. Their
    traceback goes on as plain text: structlog's development renderer would print it with
    every frame's locals, which takes seconds."""
    event = event_dict.get("event")
    if method_name in ERROR_METHODS or event in ERROR_EVENTS:
        fields = {k: v for k, v in event_dict.items() if k not in ("event", "exc_info")}
        text = f"[{method_name}] {event} {fields}"[:1000]
        exc_info = event_dict.get("exc_info")
        COLLECTOR.add("structlog", text + _exception_summary(exc_info))
        plain = _plain_traceback(exc_info)
        if plain is not None:
            del event_dict["exc_info"]
            event_dict["exception"] = plain
    return event_dict


def _install_processor() -> None:
    processors = structlog.get_config()["processors"]
    if capture_structlog not in processors:
        processors.insert(0, capture_structlog)  # in place: cached loggers share the list


def _wrap(function: Callable[..., Any]) -> Callable[..., Any]:
    def configured(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        _install_processor()
        return result

    configured.__wrapped__ = function  # type: ignore[attr-defined]
    return configured


_original_handle = logging.Logger.handle


def _handle(self: logging.Logger, record: logging.LogRecord) -> Any:
    if record.levelno >= logging.ERROR:
        message = record.getMessage()
        COLLECTOR.add(
            "logging",
            f"[{record.levelname}] {record.name}: {message}"[:1000]
            + _exception_summary(record.exc_info),
        )
    return _original_handle(self, record)


def install() -> None:
    """Collect error events from structlog and logging, from now on."""
    _install_processor()
    structlog.configure = _wrap(structlog.configure)  # type: ignore[assignment]
    structlog.reset_defaults = _wrap(structlog.reset_defaults)  # type: ignore[assignment]
    logging.Logger.handle = _handle  # type: ignore[method-assign]


def describe(logged: list[Logged]) -> str:
    return "\n".join(f"- {entry.source} ({entry.test}): {entry.text}" for entry in logged)


# pytest hooks, imported by tests/conftest.py


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test provokes an unexpected error on purpose (masked for the caller, "
        "logged for the operator); tests/logcheck.py lets its log lines pass",
    )
    install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    BETWEEN.extend(COLLECTOR.take())  # logged between tests: reported at the session's end
    COLLECTOR.current = item.nodeid
    if item.get_closest_marker(MARKER) is not None:
        COLLECTOR.exempt.add(item.nodeid)
    try:
        return (yield)
    finally:
        COLLECTOR.current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when != "teardown":
        return report
    logged = COLLECTOR.take()
    BETWEEN.extend(entry for entry in logged if entry.test != item.nodeid)
    mine = [entry for entry in logged if entry.test == item.nodeid]
    if mine and report.passed and item.nodeid not in COLLECTOR.exempt:
        report.outcome = "failed"
        report.longrepr = f"errors were logged during {item.nodeid}:\n{describe(mine)}"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    late = [
        entry
        for entry in [*BETWEEN, *COLLECTOR.take()]
        if entry.test is None or entry.test not in COLLECTOR.exempt
    ]
    session.config.stash[LATE] = late
    if late and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def logged_errors_summary(terminalreporter: Any) -> None:
    late = terminalreporter.config.stash.get(LATE, [])
    if late:
        terminalreporter.write_sep("=", "errors logged outside the tests' own time", red=True)
        terminalreporter.write_line(describe(late))


BETWEEN: list[Logged] = []
LATE = pytest.StashKey[list[Logged]]()
