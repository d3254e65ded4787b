"""What the HTTP layer refuses before any GraphQL runs — request bodies past the limit, JSON
that is not a request, unsafe request ids — and the headers every answer carries."""

import re
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON in a request (the body, or GET's `variables` and `extensions`) nests at most this deep:
# an object in a list in an object is 3 levels. Ours need about 5; deeper only costs.
MAX_JSON_DEPTH = 32
# What a caller's X-Request-ID may be to be kept (it reaches the logs and the audit log).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class BodyTooLarge(Exception):
    """A request body passed the limit; raised from `receive` and answered 413 (gql/app.py)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes.")
        self.limit = limit


class BodyLimit:
    """Stops request bodies at `max_bytes` while they arrive, whichever way they are sent: a
    declared Content-Length over the limit is refused before a byte is read, and a chunked
    body (or one longer than it declared) when the byte past the limit arrives. Routes that
    read a body see BodyTooLarge instead of the rest of it."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = next(
            (value for name, value in scope["headers"] if name == b"content-length"), b""
        )
        too_large = declared.isdigit() and int(declared) > limit
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            if too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, receive_within_limit, send)


# Answers that may carry a token or personal data: no cache (browser or proxy) keeps them.
PRIVATE_PATHS = ("/graphql", "/cabinet/")
NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` on every answer (browsers take each at its declared
    type), and `Cache-Control: no-store` on the API's and the cabinet's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [NOSNIFF, NO_STORE] if scope["path"].startswith(PRIVATE_PATHS) else [NOSNIFF]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in extra if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def safe_request_id(value: str) -> bool:
    """Whether a caller's X-Request-ID may be kept as the request's id."""
    return REQUEST_ID.fullmatch(value) is not None


def json_object(raw: str | bytes, *, what: str) -> dict[str, Any]:
    """`raw` read as a JSON object nested at most MAX_JSON_DEPTH deep; anything else is an
    HTTP 400 that says which (`what` names the text: "The request body", …)."""
    too_deep = HTTPException(400, f"{what} nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:  # also invalid UTF-8
        if error.msg.startswith("depth limit"):  # orjson's own, at 1024 levels
            raise too_deep from None
        raise HTTPException(400, f"{what} is not valid JSON: {error.msg}.") from None
    if isinstance(value, list):
        raise HTTPException(400, f"{what} is a list: batches are not accepted; send one object.")
    if not isinstance(value, dict):
        raise HTTPException(400, f"{what} must be a JSON object.")
    if nests_deeper(value, MAX_JSON_DEPTH):
        raise too_deep
    return value


def nests_deeper(value: object, limit: int) -> bool:
    """Whether objects and lists in `value` nest more than `limit` levels (each visited once)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return bool(level)


def check_graphql_request(payload: dict[str, Any]) -> None:
    """A GraphQL-over-HTTP request's parameters have their types (an HTTP 400 if not)."""
    for name, kinds, expected in (
        ("query", str, "a string"),
        ("operationName", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
    ):
        value = payload.get(name)
        if value is not None and not isinstance(value, kinds):
            raise HTTPException(400, f"`{name}` must be {expected} or null.")
