"""Logs: database errors are logged without the values their drivers quote."""

import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from clientdesk.logs import redact_database_errors

SECRET = "secret-value-4711"


async def test_database_errors_are_logged_without_the_values_they_quote(
    engine: AsyncEngine, backend: str
) -> None:
    # given a statement the database refuses, with a value it may quote back
    statement = (
        text("SELECT CAST(:v AS INTEGER)")  # asyncpg quotes the value it cannot bind
        if backend == "postgresql"
        else text("SELECT no_such_column FROM (SELECT :v AS x)")
    )
    with pytest.raises(DBAPIError) as caught:
        async with engine.connect() as connection:
            await connection.execute(statement, {"v": SECRET})
    if backend == "postgresql":
        assert SECRET in str(caught.value)  # what would reach the log otherwise
    # when it is logged
    event = redact_database_errors(None, "error", {"event": "failed", "exc_info": caught.value})
    rendered = structlog.processors.format_exc_info(None, "error", event)
    # then the trace is there, the value is not
    assert "exc_info" not in rendered
    assert SECRET not in rendered["exception"]
    assert "message withheld" in rendered["exception"]
    assert "Traceback (most recent call last)" in rendered["exception"]
    assert "SELECT" in rendered["exception"]  # the SQL, which binds values


def test_other_errors_are_logged_as_they_are() -> None:
    error = ValueError(SECRET)
    event = redact_database_errors(None, "error", {"event": "failed", "exc_info": error})
    assert event["exc_info"] is error
