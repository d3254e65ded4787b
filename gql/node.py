"""Relay global object identification: opaque IDs, the Node interface, `node` and `nodes`."""

import base64
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import strawberry

from gql.errors import BadUserInput
from services.validation import quoted


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global ID; stable, never reused.")


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    """The opaque ID of row `pk` of `type_name`: base64 of "Type:pk", as Relay servers do."""
    return strawberry.ID(base64.b64encode(f"{type_name}:{pk}".encode()).decode())


# What `to_global_id` writes inside the base64: a type name, a colon and a primary key in
# ASCII digits without leading zeros ([0-9] is ASCII-only, unlike \d).
_DECODED_ID = re.compile(r"([A-Z][A-Za-z]{0,63}):([1-9][0-9]{0,18})")
MAX_PK = 2**63 - 1  # BIGINT
MAX_ID_LENGTH = 120  # the base64 of the longest decoded form above


def parse_global_id(value: str) -> tuple[str, int]:
    """The (type name, primary key) inside a global ID; a malformed one is a clear error.

    Only the exact text `to_global_id` writes is an ID: leading zeros ("Client:01"), digits
    other than ASCII's (an Arabic-Indic one), a key beyond BIGINT, or another base64 of the
    same bytes are not.
    """
    if len(value) <= MAX_ID_LENGTH:
        try:
            decoded = base64.b64decode(value, validate=True).decode("ascii")
        except ValueError:  # not base64 (binascii.Error), or not ASCII inside
            decoded = ""
        match = _DECODED_ID.fullmatch(decoded)
        if match is not None and int(match[2]) <= MAX_PK:
            type_name, pk = match[1], int(match[2])
            if to_global_id(type_name, pk) == value:
                return type_name, pk
    raise BadUserInput(f"{quoted(value)} is not a valid ID", field="id")


MAX_NODES = 100  # IDs in one `nodes` request


def pk_of(value: str, type_name: str) -> int | None:
    """The primary key of an ID expected to be of `type_name`; None for another type's ID."""
    actual, pk = parse_global_id(value)
    return pk if actual == type_name else None


# How each Node type loads its objects by primary key, for `node` and `nodes`; the callable
# applies the viewer's permissions and returns None for anything the viewer may not see.
NodeFetcher = Callable[[Any, Sequence[int]], Awaitable[Sequence[Node | None]]]
NODE_FETCHERS: dict[str, NodeFetcher] = {}


def register_node(type_name: str, fetcher: NodeFetcher) -> None:
    NODE_FETCHERS[type_name] = fetcher


async def fetch_nodes(info: Any, ids: Sequence[str]) -> list[Node | None]:
    """The objects behind global IDs, in order; None where missing or not visible."""
    parsed = [parse_global_id(value) for value in ids]
    by_type: dict[str, list[int]] = {}
    for type_name, pk in parsed:
        by_type.setdefault(type_name, []).append(pk)
    found: dict[tuple[str, int], Node | None] = {}
    for type_name, pks in by_type.items():
        fetcher = NODE_FETCHERS.get(type_name)
        objects = await fetcher(info, pks) if fetcher else [None] * len(pks)
        found.update(zip(((type_name, pk) for pk in pks), objects, strict=True))
    return [found[key] for key in parsed]
