"""Values that have broken GraphQL servers, one hazard each, for the fuzzers: schemathesis'
hooks (tools/schemathesis_hooks.py) and the in-process hostile-input test
(tests/gql/test_hostile_inputs.py). Plain Python: no imports of the application."""

import base64
import json


def global_id(type_name: str, pk: object) -> str:
    """base64 of "Type:pk", as gql/node.py makes them."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def _cursor(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


# Strings that have broken servers: each one a separate hazard.
HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: sent as the JSON escape "\ud800"
    "x\udfffy",
    "\r\n",
    "a\rb\nc\td",
    "\x1b[31m\x07\x7f\x85",
    "\u202eevil\u202c",  # right-to-left override
    "e\u0301\u0301\u0301\u0301",  # combining marks
    "\ufeff\u200b\u2028\u2029",
    "\U0001f600" * 3,
    "ß" * 300,
    "a" * 65,
    "a" * 501,
    "A" * 73,  # past bcrypt-style 72-byte limits
    "x" * 10_000,
    "y" * 60_000,  # under the 100,000-byte body limit
    "z" * 100_000,  # over it
    "%s%n%x",
    "'; DROP TABLE clients; --",
    "\\",
    '"',
    "${jndi:ldap://127.0.0.1/a}",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "null",
    "[]",
    "{}",
]

HOSTILE_DECIMALS = [
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "-1e400",
    "1E+999999999",
    "1e-400",
    "0E-1000",
    "-0",
    "-0.00",
    "1" + "0" * 400,
    "0." + "0" * 400 + "1",
    "9" * 30,
    "10000000000000",
    "1e3",
    "0.001",
    " 12.5 ",
    "1_000",
    "\u0661\u0662\u0663",  # Arabic-Indic digits: Python's Decimal reads them
    "12.5.5",
    "",
    "\x00",
    "\ud800",
    "0x10",
    str(2**70),
    str(-(2**63) - 1),
]
GOOD_DECIMALS = ["0", "0.01", "1", "5", "12.50", "-5", "-12.5", "100", "999.99", "1000000"]

HOSTILE_DATETIMES = [
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "9999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:59:59+14:00",
    "1970-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-06-01",
    "2026-06-01T24:00:00Z",
    "2026-06-01T12:00:00+99:00",
    "20260601T120000Z",
    "2026-W22",
    "now",
    "",
    "\x00",
    "\ud800",
    "2026-06-01T12:00:00\x00",
    "+275760-09-13T00:00:00Z",
]
GOOD_DATETIMES = [
    "2026-06-01T12:00:00+00:00",
    "2026-01-01T00:00:00Z",
    "2030-01-01T00:00:00+02:00",
    "2099-12-31T23:59:59-05:00",
    "2020-02-29T12:30:00.123456+05:30",
]

HOSTILE_IDS = [
    "",
    "\x00",
    "\ud800",
    "not base64!",
    global_id("Client", 2**70),
    global_id("Client", 2**63),
    global_id("Client", 9_223_372_036_854_775_807),
    global_id("Client", -1),
    global_id("Client", 0),
    global_id("Client", "1e3"),
    global_id("Client", "\x00"),
    global_id("Nope", 1),
    global_id("", 1),
    global_id("Client", ""),
    base64.b64encode(b"\xff\xfe").decode(),
    base64.b64encode("Client:\u0661".encode()).decode(),  # an Arabic-Indic digit
    "Q2xpZW50OjE",  # no padding
    "Q2xpZW50OjE=\n",
]


def tampered_cursors(cursors: list[str]) -> list[str]:
    """Real cursors with their id, sort values or shape replaced by hostile ones."""
    made = [
        _cursor("[]"),
        _cursor("null"),
        _cursor('["x", [], 1]'),
        _cursor("[" * 20_000 + "]" * 20_000),
        "!!!",
        "\x00",
    ]
    for cursor in cursors[:6]:
        try:
            signature, values, id_ = json.loads(base64.urlsafe_b64decode(cursor + "=" * 4))
        except (ValueError, TypeError):
            continue
        sig = json.dumps(signature)
        vals = json.dumps(values)
        for bad_id in (str(2**70), str(2**63), "-1", "1e400", "Infinity", "NaN", "1.5", '"1"'):
            made.append(_cursor(f"[{sig}, {vals}, {bad_id}]"))
        for bad in (
            '"9999-12-31T23:59:59-14:00"',
            '"0001-01-01T00:00:00+14:00"',
            '"10000-01-01T00:00:00"',
            "Infinity",
            "-Infinity",
            "NaN",
            "1e400",
            str(2**70),
            '"\\u0000"',
            '"\\ud800"',
            '"x"',
            "true",
            "[[[[[[[[[[1]]]]]]]]]]",
            "{}",
            '"' + "9" * 500 + '"',
        ):
            swapped = ", ".join([bad] * len(values)) if values else bad
            made.append(_cursor(f"[{sig}, [{swapped}], {id_}]"))
        made.append(_cursor(f"[{sig}, {vals}, {id_}, 1]"))
        made.append(_cursor(f"[{sig}, {'[' * 5000}{']' * 5000}, {id_}]"))
    return made
