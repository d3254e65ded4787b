"""Core SELECTs run straight on the driver, for the read paths that run on every request.

SQLAlchemy's own execution costs about a millisecond of Python per statement on asyncpg (its
DBAPI emulation, a greenlet hop, Row objects). `fetch_all` keeps what matters of it — the
statement is still built with SQLAlchemy, compiled once per shape (its cache key), with its
bind and result processing — and hands the SQL to asyncpg itself: a few tens of microseconds.

It runs on the caller's connection, inside whatever transaction that connection is in. On
other databases (SQLite) it is plain `connection.execute`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
# Statement shapes kept compiled per process; past this the cache starts again.
MAX_SHAPES = 2_000


@dataclass(slots=True)
class _Shape:
    """One compiled statement shape, and how to read its result columns."""

    compiled: SQLCompiler
    # Per expanded SQL text: the result processors (they depend on the driver's column types).
    readers: dict[str, tuple[Processor, ...]]


_shapes: dict[Any, _Shape] = {}


def _shape(statement: Select[*tuple[Any, ...]], key: Any, dialect: Dialect) -> _Shape:
    shape = _shapes.get(key.key)
    if shape is None:
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        compiled = statement.compile(dialect=dialect, cache_key=key)
        assert isinstance(compiled, SQLCompiler)
        shape = _shapes[key.key] = _Shape(compiled, {})
    return shape


async def fetch_all(
    connection: AsyncConnection,
    statement: Select[*tuple[Any, ...]],
    parameters: Mapping[str, Any] | None = None,
) -> Sequence[Sequence[Any]]:
    """The rows of `statement`, each a sequence of processed column values in select order;
    `parameters` gives values to its `bindparam()`s by name."""
    dialect = connection.dialect
    key = statement._generate_cache_key() if dialect.driver == "asyncpg" else None
    if key is None:  # another driver, or a statement SQLAlchemy cannot cache
        result: Sequence[Sequence[Any]] = (await connection.execute(statement, parameters)).all()
        return result
    shape = _shape(statement, key, dialect)
    compiled = shape.compiled
    parameters = compiled.construct_params(parameters, extracted_parameters=key.bindparams)
    state = compiled.construct_expanded_state(parameters)
    processors = state.processors
    assert state.positiontup is not None  # asyncpg's paramstyle is positional
    arguments = [
        processors[name](state.parameters[name]) if name in processors else state.parameters[name]
        for name in state.positiontup
    ]
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    sql = state.statement
    readers = shape.readers.get(sql)
    if readers is None:
        prepared = await driver.prepare(sql)
        types = [attribute.type.oid for attribute in prepared.get_attributes()]
        readers = shape.readers[sql] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, oid)
            for column, oid in zip(statement.selected_columns, types, strict=True)
        )
    records = await driver.fetch(sql, *arguments)
    if not any(readers):
        return records  # type: ignore[no-any-return]
    steps = [(index, reader) for index, reader in enumerate(readers) if reader is not None]
    rows = []
    for record in records:
        row = list(record)
        for index, reader in steps:
            row[index] = reader(row[index])
        rows.append(row)
    return rows
