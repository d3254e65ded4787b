"""Conditions on a JSON scalar column that mean the same on both databases.

PostgreSQL keeps JSONB and compares it by type and value (`1 = 1.0`, `"1" <> 1`); SQLite
keeps JSON text, and `json_extract` gives back SQL values (true as 1), so there the JSON type
is compared too. Custom field values are such columns (services/custom_fields.py).
"""

import json
from typing import Any

from sqlalchemy import ColumnElement, bindparam, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, String

# SQLite's json_type() names for a JSON scalar of each Python type.
_SQLITE_TYPES = {bool: ("true", "false"), int: ("integer", "real"), float: ("integer", "real")}


class json_text(FunctionElement[str]):
    """The JSON scalar as text (a string without its quotes); NULL for JSON null."""

    type = String()
    inherit_cache = True


@compiles(json_text, "postgresql")
def _json_text_postgresql(element: json_text, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} #>> '{{}}')"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$')"


class json_is_text(FunctionElement[bool]):
    """The JSON column holds a string."""

    type = Boolean()
    inherit_cache = True


@compiles(json_is_text, "postgresql")
def _json_is_text_postgresql(element: json_is_text, compiler: Any, **kw: Any) -> str:
    return f"(jsonb_typeof({compiler.process(element.clauses, **kw)}) = 'string')"


@compiles(json_is_text, "sqlite")
def _json_is_text_sqlite(element: json_is_text, compiler: Any, **kw: Any) -> str:
    return f"(json_type({compiler.process(element.clauses, **kw)}) = 'text')"


class json_equals(FunctionElement[bool]):
    """The JSON column holds this scalar (a string, number or boolean), of the same type."""

    type = Boolean()
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any], value: str | int | float | bool) -> None:
        if isinstance(value, bool):  # json_extract gives 1 or 0: the JSON type alone says
            types = "'true'" if value else "'false'"
        else:
            types = ", ".join(f"'{name}'" for name in _SQLITE_TYPES.get(type(value), ("text",)))
        super().__init__(
            column,
            bindparam(None, json.dumps(value), type_=String()),  # as JSON, for PostgreSQL
            bindparam(None, value),  # as SQLite's json_extract gives it back
            literal_column(types),  # SQLite's JSON types: in the SQL, so in its cache key
            literal_column("1" if isinstance(value, bool) else "0"),
        )


@compiles(json_equals, "postgresql")
def _json_equals_postgresql(element: json_equals, compiler: Any, **kw: Any) -> str:
    column, as_json, *_ = element.clauses
    return f"({compiler.process(column, **kw)} = CAST({compiler.process(as_json, **kw)} AS JSONB))"


@compiles(json_equals, "sqlite")
def _json_equals_sqlite(element: json_equals, compiler: Any, **kw: Any) -> str:
    column, _, plain, types, boolean = element.clauses
    written = compiler.process(column, **kw)
    listed = compiler.process(types, **kw)
    if compiler.process(boolean, **kw) == "1":
        return f"(json_type({written}) = {listed})"
    value = compiler.process(plain, **kw)
    return f"(json_type({written}) IN ({listed}) AND json_extract({written}, '$') = {value})"
