"""Core SELECTs run straight on the driver, for the read paths that run on every request.

SQLAlchemy's own execution costs about a millisecond of Python per statement on asyncpg (its
DBAPI emulation, a greenlet hop, Row objects). `fetch_all` keeps what matters of it — the
statement is still built with SQLAlchemy, compiled once per shape (its cache key), with its
bind and result processing — and hands the SQL to asyncpg itself: a few tens of microseconds.

It runs on the caller's connection, inside whatever transaction that connection is in. On
other databases (SQLite) it is plain `connection.execute`.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
# Where a pooled connection keeps its asyncpg connection (Connection.info lives as long as it).
DRIVER = "clientdesk_driver"
ADAPTER = "clientdesk_adapter"  # and SQLAlchemy's adapter of it
# Statement shapes kept compiled per process; past this the cache starts again.
MAX_SHAPES = 2_000


@dataclass(slots=True)
class _Shape:
    """One compiled statement shape, and how to read its result columns (they depend on the
    driver's column types, known after the first run)."""

    compiled: SQLCompiler
    readers: tuple[Processor, ...] | None = None


_shapes: dict[Any, _Shape] = {}

# Called with (connection, sql, arguments) before each statement sent from here: what
# SQLAlchemy's before_cursor_execute event is for its own statements (tests count both).
Observer = Callable[[AsyncConnection, str, Sequence[Any]], None]
observers: list[Observer] = []


def _shape(statement: Select[*tuple[Any, ...]], key: Any, dialect: Dialect) -> _Shape:
    shape = _shapes.get(key.key)
    if shape is None:
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        compiled = statement.compile(dialect=dialect, cache_key=key)
        assert isinstance(compiled, SQLCompiler)
        shape = _shapes[key.key] = _Shape(compiled)
    return shape


class Reused:
    """A statement run again and again (a compiled page for one set of variables, the token
    look-up): its SQL and arguments are worked out on the first run only. Later runs may give
    other values to its plain `bindparam()`s (not to IN lists, which change the SQL)."""

    __slots__ = ("_expanded", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        # SQL, arguments, where each named parameter goes (position, bind processor), readers
        self._expanded: (
            tuple[str, list[Any], dict[str, tuple[int, Processor]], tuple[Processor, ...]] | None
        ) = None


class Shaped:
    """A statement built once and run with other values for its `bindparam()`s, expanding
    ones (IN lists) included: its cache key is worked out once, not on every run (a loader's
    statement, say; see gql/loaders.py)."""

    __slots__ = ("columns", "key", "recipes", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self.columns = tuple(statement.selected_columns.keys())  # the rows' attribute names
        self.key = statement._generate_cache_key()
        assert self.key is not None, "a statement SQLAlchemy cannot cache"
        # per parameter names and list lengths: the SQL, how to make its arguments, readers
        self.recipes: dict[Any, tuple[str, list[Step], tuple[Processor, ...]]] = {}


# How one argument of a Shaped statement is made: a value given (by name), an item of a list
# given (name, position), or a constant of the statement itself; with its bind processor.
Step = tuple[str, str | None, int, Processor, Any]
MAX_RECIPES = 64
EXPANDED = re.compile(r"(.+)_(\d+)$")  # the n-th value of an expanding parameter, from 1


def _signature(parameters: Mapping[str, Any] | None) -> Any:
    if not parameters:
        return ()
    return tuple(
        sorted(
            (name, len(value) if isinstance(value, list | tuple) else -1)
            for name, value in parameters.items()
        )
    )


def _recipe(
    slots: dict[str, tuple[int, Processor]],
    arguments: list[Any],
    parameters: Mapping[str, Any] | None,
) -> list[Step] | None:
    """How to make `arguments` from other `parameters` of the same names and lengths, or None
    if that cannot be told from the names."""
    given = parameters or {}
    steps: list[Step] = []
    for name, (index, process) in sorted(slots.items(), key=lambda item: item[1][0]):
        value = given.get(name)
        if name in given and not isinstance(value, list | tuple):
            steps.append(("value", name, 0, process, None))
            continue
        expanded = EXPANDED.match(name)
        if expanded and isinstance(given.get(expanded[1]), list | tuple):
            steps.append(("item", expanded[1], int(expanded[2]) - 1, process, None))
        elif name in given:
            return None
        else:
            steps.append(("constant", None, 0, None, arguments[index]))
    return steps


def _arguments(steps: list[Step], parameters: Mapping[str, Any] | None) -> list[Any]:
    given = parameters or {}
    arguments = []
    for kind, name, position, process, constant in steps:
        if kind == "constant":
            arguments.append(constant)
            continue
        assert name is not None
        value = given[name] if kind == "value" else given[name][position]
        arguments.append(value if process is None else process(value))
    return arguments


async def fetch_all(
    connection: AsyncConnection,
    statement: Select[*tuple[Any, ...]] | Reused | Shaped,
    parameters: Mapping[str, Any] | None = None,
) -> Sequence[Sequence[Any]]:
    """The rows of `statement`, each a sequence of processed column values in select order;
    `parameters` gives values to its `bindparam()`s by name."""
    reused = statement if isinstance(statement, Reused) else None
    shaped = statement if isinstance(statement, Shaped) else None
    select_ = (
        reused.statement
        if reused is not None
        else shaped.statement
        if shaped is not None
        else statement
    )
    assert isinstance(select_, Select)
    dialect = connection.dialect
    if dialect.driver != "asyncpg":
        result: Sequence[Sequence[Any]] = (await connection.execute(select_, parameters)).all()
        return result
    driver: Any = connection.info.get(DRIVER)  # cleared when the connection is replaced
    if driver is None:
        raw = await connection.get_raw_connection()
        driver = connection.info[DRIVER] = raw.driver_connection
    recipe = shaped.recipes.get(_signature(parameters)) if shaped is not None else None
    if recipe is not None:
        sql, made_by, readers = recipe
        arguments = _arguments(made_by, parameters)
    elif reused is not None and reused._expanded is not None:
        sql, arguments, slots, readers = reused._expanded
        if parameters:
            arguments = list(arguments)
            for name, value in parameters.items():
                index, process = slots[name]
                arguments[index] = value if process is None else process(value)
    else:
        key = shaped.key if shaped is not None else select_._generate_cache_key()
        if key is None:  # a statement SQLAlchemy cannot cache
            result = (await connection.execute(select_, parameters)).all()
            return result
        shape = _shape(select_, key, dialect)
        sql, arguments, slots = _expand(shape.compiled, key, parameters)
        if shape.readers is None:
            prepared = await driver.prepare(sql)
            types = [attribute.type.oid for attribute in prepared.get_attributes()]
            shape.readers = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, oid)
                for column, oid in zip(select_.selected_columns, types, strict=True)
            )
        readers = shape.readers
        if reused is not None:
            reused._expanded = (sql, arguments, slots, readers)
        if shaped is not None:
            found = _recipe(slots, arguments, parameters)
            # kept only if it makes these very arguments again
            if found is not None and _arguments(found, parameters) == arguments:
                if len(shaped.recipes) >= MAX_RECIPES:
                    shaped.recipes.clear()
                shaped.recipes[_signature(parameters)] = (sql, found, readers)
    for observe in observers:
        observe(connection, sql, arguments)
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


def _expand(
    compiled: SQLCompiler, key: Any, parameters: Mapping[str, Any] | None
) -> tuple[str, list[Any], dict[str, tuple[int, Processor]]]:
    """The SQL for these values (IN lists expanded), its positional arguments, processed, and
    where each named parameter goes."""
    values = compiled.construct_params(parameters, extracted_parameters=key.bindparams)
    state = compiled.construct_expanded_state(values)
    # the statement's own processors, and those of the items of its expanded IN lists
    processors: dict[str, Any] = {**compiled._bind_processors, **state.processors}
    assert state.positiontup is not None  # asyncpg's paramstyle is positional
    arguments = [
        processors[name](state.parameters[name]) if name in processors else state.parameters[name]
        for name in state.positiontup
    ]
    slots: dict[str, tuple[int, Processor]] = {
        name: (n, processors.get(name)) for n, name in enumerate(state.positiontup)
    }
    return state.statement, arguments, slots


class _Mapping:
    """A light row's `_mapping`: its values by column key."""

    __slots__ = ("_index", "_row")

    def __init__(self, row: tuple[Any, ...], index: dict[str, int]) -> None:
        self._row = row
        self._index = index

    def __getitem__(self, key: str) -> Any:
        return self._row[self._index[key]]

    def get(self, key: str, default: Any = None) -> Any:
        index = self._index.get(key)
        return default if index is None else self._row[index]

    def keys(self) -> list[str]:
        return list(self._index)


_row_classes: dict[tuple[str, ...], type[tuple[Any, ...]]] = {}


def row_class(keys: tuple[str, ...]) -> type[tuple[Any, ...]]:
    """A tuple type whose values read as attributes named `keys` (and by `_mapping[key]`, as
    SQLAlchemy's Row): what loaders hand to resolvers, without a Row's construction cost."""
    found = _row_classes.get(keys)
    if found is not None:
        return found
    index = {key: n for n, key in enumerate(keys)}

    def mapping(self: tuple[Any, ...]) -> _Mapping:
        return _Mapping(self, index)

    def as_dict(self: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(keys, self, strict=True))

    namespace: dict[str, Any] = {
        "__slots__": (),
        "_fields": keys,
        "_mapping": property(mapping),
        "_asdict": as_dict,
        "__repr__": lambda self: f"Row{tuple(self)!r}",
    }
    for key, n in index.items():
        namespace[key] = property(itemgetter(n))
    found = _row_classes[keys] = type("LightRow", (tuple,), namespace)
    return found


def light_rows(keys: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """`rows` (as `fetch_all` gives them) as light rows with attributes named `keys`."""
    make = row_class(keys)
    return [make(row) for row in rows]


async def begin(connection: AsyncConnection) -> None:
    """Start the connection's transaction now, if it has not started yet (PostgreSQL).

    SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs itself; a
    statement sent from here first would run outside any transaction (a row lock taken by it
    would be gone at once). This starts it the way the adapter would."""
    if connection.dialect.driver != "asyncpg":
        return
    adapter: Any = connection.info.get(ADAPTER)  # cleared when the connection is replaced
    if adapter is None:
        raw = await connection.get_raw_connection()
        adapter = connection.info[ADAPTER] = raw.dbapi_connection
    if adapter._transaction is None:
        async with adapter._execute_mutex:
            if adapter._transaction is None:
                await adapter._start_transaction()


async def write(
    connection: AsyncConnection,
    statement: Select[*tuple[Any, ...]] | Shaped,
    parameters: Mapping[str, Any] | None = None,
) -> Sequence[Sequence[Any]]:
    """`fetch_all` inside the connection's transaction (started if need be), for statements
    that lock or change rows; the driver's errors are raised as SQLAlchemy's (IntegrityError,
    DBAPIError), as a statement run by SQLAlchemy would raise them."""
    await begin(connection)
    try:
        return await fetch_all(connection, statement, parameters)
    except Exception as error:
        if connection.dialect.driver != "asyncpg" or not hasattr(error, "sqlstate"):
            raise
        sql = "<direct statement>"
        if str(error.sqlstate).startswith("23"):  # integrity constraint violation
            raise IntegrityError(sql, None, error) from error
        raise DBAPIError(sql, None, error) from error
