"""The fast executor answers plain fields itself and leaves every irregular case, with its
error, to graphql-core."""

import enum
from typing import Any

import pytest
import strawberry

from gql.execution import FastExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Item:
    name: str
    nickname: str | None
    colour: Colour
    count: int


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [
            Item(name="a", nickname=None, colour=Colour.RED, count=1),
            Item(name=None, nickname="b", colour=Colour.RED, count=2),  # type: ignore[arg-type]
            Item(name="c", nickname="c", colour="green", count=3),  # type: ignore[arg-type]
        ]


def run(query: str, *, fast: bool) -> Any:
    options: dict[str, Any] = {"execution_context_class": FastExecutionContext} if fast else {}
    return strawberry.Schema(query=Query, **options).execute_sync(query)


@pytest.mark.logs_errors  # strawberry logs the toy schema's field errors
def test_answers_match_graphql_core_including_errors() -> None:
    query = "{ items { name nickname colour count } }"
    fast, plain = run(query, fast=True), run(query, fast=False)
    assert fast.data == plain.data
    assert fast.data is None  # a non-null field was null: nulls propagate to the top
    assert [e.message for e in fast.errors] == [e.message for e in plain.errors]
    assert "Cannot return null for non-nullable field Item.name." in fast.errors[0].message
    assert [e.path for e in fast.errors] == [e.path for e in plain.errors]


def test_plain_fields_serialize_as_graphql_core_does() -> None:
    query = "{ items { nickname count } }"
    fast = run(query, fast=True)
    assert fast.errors is None
    assert fast.data == run(query, fast=False).data
    assert fast.data == {
        "items": [
            {"nickname": None, "count": 1},
            {"nickname": "b", "count": 2},
            {"nickname": "c", "count": 3},
        ]
    }


@pytest.mark.logs_errors  # strawberry logs the toy schema's field errors
def test_a_value_that_cannot_serialize_takes_graphql_cores_error() -> None:
    query = "{ items { colour } }"
    fast, plain = run(query, fast=True), run(query, fast=False)
    assert fast.data == plain.data
    assert [e.message for e in fast.errors] == [e.message for e in plain.errors]
    assert fast.errors
    assert "green" in fast.errors[0].message
