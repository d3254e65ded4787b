"""The fast executor answers plain fields itself and leaves every irregular case, with its
error, to graphql-core."""

import enum
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

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


@strawberry.type
class Amount:
    value: int
    label: str | None


@strawberry.type
class Holder:
    name: str
    amount: Amount
    spare: Amount | None

    @strawberry.field
    def computed(self) -> Amount:
        return self.amount


@strawberry.type
class HolderQuery:
    @strawberry.field
    def holders(self) -> list[Holder]:
        return [
            Holder(name="a", amount=Amount(value=1, label="one"), spare=None),
            Holder(name="b", amount=Amount(value=2, label=None), spare=Amount(value=3, label="x")),
            Holder(name="c", amount=None, spare=Amount(value=4, label=None)),  # type: ignore[arg-type]
            Holder(name="d", amount=Amount(value="5", label="y"), spare=None),  # type: ignore[arg-type]
            Holder(name="e", amount=Amount(value=None, label="z"), spare=None),  # type: ignore[arg-type]
        ]


def run_holders(query: str, *, fast: bool) -> Any:
    options: dict[str, Any] = {"execution_context_class": FastExecutionContext} if fast else {}
    return strawberry.Schema(query=HolderQuery, **options).execute_sync(query)


@pytest.mark.logs_errors  # strawberry logs the toy schema's field errors
@pytest.mark.parametrize(
    "query",
    [
        "{ holders { name spare { value label } } }",  # objects of plain fields, or null
        "{ holders { name amount { value label } } }",  # null where not allowed, bad values
        "{ holders { name amount { label } spare { label } } }",
        "{ holders { amount { __typename value } computed { value } } }",  # not all plain
        "{ holders { spare { v: value value } s2: spare { label } } }",  # aliases
    ],
)
def test_plain_objects_answer_as_graphql_core_does(query: str) -> None:
    fast, plain = run_holders(query, fast=True), run_holders(query, fast=False)
    assert fast.data == plain.data
    assert [e.message for e in fast.errors or []] == [e.message for e in plain.errors or []]
    assert [e.path for e in fast.errors or []] == [e.path for e in plain.errors or []]


class Counting(FastExecutionContext):
    """Which fields graphql-core's own path executed."""

    executed: ClassVar[list[str]] = []
    completed: ClassVar[list[str]] = []  # objects graphql-core completed, by type

    def execute_field(
        self, parent_type: Any, source: Any, fields: Any, path: Any, *rest: Any
    ) -> Any:
        Counting.executed.append(path.key)
        return super().execute_field(parent_type, source, fields, path, *rest)

    def complete_object_value(self, return_type: Any, *rest: Any) -> Any:
        Counting.completed.append(return_type.name)
        return super().complete_object_value(return_type, *rest)


def test_plain_objects_are_answered_by_the_fast_path() -> None:
    Counting.executed = []
    query = "{ holders { name spare { value label } } }"
    fast = strawberry.Schema(query=HolderQuery, execution_context_class=Counting).execute_sync(
        query
    )
    assert fast.errors is None
    assert fast.data is not None
    assert fast.data["holders"][1] == {"name": "b", "spare": {"value": 3, "label": "x"}}
    assert Counting.executed == ["holders"]  # the rest was read by the fast path


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Person(Named):
    age: int | None


@strawberry.type
class Pet(Named):
    legs: int


@strawberry.type
class Team:
    lead: Person | None
    members: list[Person | None]
    strict: list[Person]


@strawberry.type
class TeamQuery:
    @strawberry.field
    def teams(self) -> list[Team]:
        ada, bob = Person(name="ada", age=36), Person(name="bob", age=None)
        return [
            Team(lead=ada, members=[ada, None, bob], strict=[ada, bob]),
            Team(lead=None, members=[], strict=[bob]),
            # a value of another type where a Person belongs, and a null where none may be
            Team(lead=Pet(name="rex", legs=4), members=[bob], strict=[ada]),  # type: ignore[arg-type]
            Team(lead=bob, members=[Pet(name="tom", legs=4)], strict=[None]),  # type: ignore[list-item]
        ]


@pytest.mark.logs_errors  # strawberry logs the toy schema's field errors
@pytest.mark.parametrize(
    "query",
    [
        "{ teams { lead { name age } members { name } } }",
        "{ teams { strict { name age } } }",
        "{ teams { members { __typename name } lead { name } } }",
        "{ teams { m: members { n: name a: age } } }",
    ],
)
def test_lists_and_typed_objects_answer_as_graphql_core_does(query: str) -> None:
    schema = {"query": TeamQuery, "types": [Pet]}
    fast = strawberry.Schema(**schema, execution_context_class=FastExecutionContext)
    plain = strawberry.Schema(**schema)
    fast_result, plain_result = fast.execute_sync(query), plain.execute_sync(query)
    assert fast_result.data == plain_result.data
    errors = [(e.message, e.path) for e in fast_result.errors or []]
    assert errors == [(e.message, e.path) for e in plain_result.errors or []]


@pytest.mark.logs_errors  # the Pet among the Persons is an error
def test_lists_of_plain_objects_are_answered_by_the_fast_path() -> None:
    Counting.executed, Counting.completed = [], []
    query = "{ teams { members { name age } } }"
    schema = strawberry.Schema(query=TeamQuery, types=[Pet], execution_context_class=Counting)
    found = schema.execute_sync(query, root_value=None)
    assert found.data is not None
    assert found.data["teams"][0]["members"] == [
        {"name": "ada", "age": 36},
        None,
        {"name": "bob", "age": None},
    ]
    # every item's fields were read by the fast path, but for the Pet without an age: its
    # list went to graphql-core, which reported it
    assert [key for key in Counting.executed if key not in ("teams", "members")] == ["age"]
    assert found.errors is not None
    assert [e.path for e in found.errors] == [["teams", 3, "members", 0, "age"]]
    assert Counting.completed.count("Person") == 1  # the Pet; the other lists were written


async def incremental(query: str, *, fast: bool) -> list[Any]:
    """Every payload of a request on a schema with @defer and @stream."""
    options: dict[str, Any] = {"execution_context_class": FastExecutionContext} if fast else {}
    config = StrawberryConfig(enable_experimental_incremental_execution=True)
    result = await strawberry.Schema(query=HolderQuery, config=config, **options).execute(query)
    if not hasattr(result, "initial_result"):
        return [(result.data, result.errors)]
    payloads = [result.initial_result.formatted]
    async for later in result.subsequent_results:
        payloads.append(later.formatted)
    return payloads


@pytest.mark.parametrize(
    "query",
    [
        "{ holders @stream(initialCount: 1) { name } }",
        "{ holders { name ... @defer { spare { value } } } }",
        "{ holders { name } ... @defer { holders { spare { value } } } }",
        "{ holders { spare { value } } ... @defer { holders { spare { label } } } }",
    ],
)
async def test_deferred_and_streamed_fields_come_when_graphql_core_sends_them(query: str) -> None:
    assert await incremental(query, fast=True) == await incremental(query, fast=False)
