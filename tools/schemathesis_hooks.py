"""Teaches schemathesis the API's scalars (loaded with SCHEMATHESIS_HOOKS=tools.schemathesis_hooks).

Every scalar gets a mix of well-formed values, values that reach the service code (global IDs of
rows that exist, real cursors, the seeded custom field keys) and hostile ones: NUL, lone
surrogates, control characters, right-to-left and combining marks, very long text, NaN, ±Infinity,
1e400, numbers beyond int64, dates in year 1 and 9999 with offsets, tampered cursors.

The seeded rows come from the JSON file named by CLIENTDESK_FUZZ_DATA (written by the
`live_server` fixture, tests/blackbox/conftest.py):
`{"ids": {"Client": ["Q2xpZW50OjE=", ...], ...}, "cursors": [...], "strings": [...]}`.
Without it the strategies still run, with garbage IDs only.

Custom scalars registered here take precedence over schemathesis' own strategies, the built-in
ones (String, ID, Int) included: hypothesis-graphql asks `custom_scalars` first.
"""

import json
import os
from pathlib import Path
from typing import Any

import graphql
from hypothesis import strategies as st
from schemathesis.graphql import nodes, scalar

from tests.hostile import (
    GOOD_DATETIMES,
    GOOD_DECIMALS,
    HOSTILE_DATETIMES,
    HOSTILE_DECIMALS,
    HOSTILE_IDS,
    HOSTILE_STRINGS,
    tampered_cursors,
)


def _load_data() -> dict[str, Any]:
    path = os.environ.get("CLIENTDESK_FUZZ_DATA")
    if not path:
        return {"ids": {}, "cursors": [], "strings": []}
    loaded: dict[str, Any] = json.loads(Path(path).read_text())
    return loaded


DATA = _load_data()


IDS: dict[str, list[str]] = DATA.get("ids", {})
CLIENT_IDS = IDS.get("Client", [])
OTHER_IDS = [
    value for type_name, values in IDS.items() if type_name != "Client" for value in values
]
CURSORS: list[str] = DATA.get("cursors", [])
KNOWN_STRINGS: list[str] = DATA.get("strings", [])


def _sampled(values: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(values) if values else st.nothing()


def _string_nodes(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return strategy.map(nodes.String)


# ID: mostly rows that exist (clients most of all: most ID arguments are clients), then any
# type's rows, then garbage.
ID_VALUES = st.one_of(
    _sampled(CLIENT_IDS),
    _sampled(CLIENT_IDS),
    _sampled(OTHER_IDS),
    _sampled(HOSTILE_IDS),
    st.text(max_size=12),
)
scalar("ID", _string_nodes(ID_VALUES))

# String: plain text, values the service knows (logins, currencies, keys, cursors), hostile text.
scalar(
    "String",
    _string_nodes(
        st.one_of(
            st.text(max_size=20),
            _sampled(KNOWN_STRINGS),
            _sampled(HOSTILE_STRINGS),
            _sampled(CURSORS),
            _sampled(tampered_cursors(CURSORS)),
            st.text(st.characters(categories=["Cc", "Cs", "Mn", "Zl", "Zp"]), max_size=20),
        )
    ),
)

# Int: the edges of page sizes and of 32 bits (GraphQL's Int) next to any int.
scalar(
    "Int",
    st.one_of(
        st.sampled_from([0, 1, -1, 2, 10, 100, 101, 1000, 2**31 - 1, -(2**31)]),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
    ).map(nodes.Int),
)

# Decimal: exact decimals as strings, and the odd ones (exponents, NaN, Infinity, 1e400...).
scalar(
    "Decimal",
    _string_nodes(
        st.one_of(
            st.sampled_from(GOOD_DECIMALS),
            st.decimals(min_value=-(10**13), max_value=10**13, places=2, allow_nan=False).map(str),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            st.sampled_from(HOSTILE_DECIMALS),
        )
    ),
)

# DateTime: ISO 8601 with and without offsets, at the edges of the calendar, and garbage.
scalar(
    "DateTime",
    _string_nodes(
        st.one_of(
            st.sampled_from(GOOD_DATETIMES),
            st.datetimes(timezones=st.timezones()).map(lambda value: value.isoformat()),
            st.datetimes().map(lambda value: value.isoformat()),
            st.sampled_from(HOSTILE_DATETIMES),
        )
    ),
)

# JSON (custom field values): any JSON value, numbers beyond int64 and deep nesting included.
_json_leaves = st.one_of(
    st.text(max_size=30).map(nodes.String),
    _sampled(HOSTILE_STRINGS).map(nodes.String),
    st.sampled_from(["2026-06-01", "0000-00-00", "9999-12-31", "2026-02-30"]).map(nodes.String),
    st.integers(-(10**6), 10**6).map(nodes.Int),
    st.sampled_from([2**70, -(2**70), 2**63, 10**400]).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.booleans().map(nodes.Boolean),
    st.just(nodes.Null),
)
scalar(
    "JSON",
    st.recursive(
        _json_leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(nodes.List),
            st.dictionaries(st.sampled_from(["a", "b", "value"]), children, max_size=3).map(
                lambda mapping: nodes.Object(
                    [
                        graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value)
                        for key, value in mapping.items()
                    ]
                )
            ),
        ),
        max_leaves=5,
    ),
)
