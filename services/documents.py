"""Trusted documents (persisted operations): GraphQL documents registered ahead of time and
then sent by their id, `sha256:` and the hex SHA-256 of their UTF-8 text (the GraphQL-over-HTTP
persisted documents appendix). Registered from graphql-codegen's `persisted-documents.json` or
from `.graphql` files (`clientdesk documents add`)."""

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.direct import Reused
from db.models import TrustedDocument
from db.session import SharedSession
from services.errors import DomainError, ErrorCode
from services.validation import column_length

PREFIX = "sha256:"
# The appendix's "SHA256 hex document identifier": lower-case hex only.
DOCUMENT_ID = re.compile(r"sha256:[0-9a-f]{64}")
MAX_SOURCE = column_length(TrustedDocument.source)
MAX_NAMES = column_length(TrustedDocument.operation_names)

BODY_BY_ID = Reused(
    select(TrustedDocument.body).where(TrustedDocument.id == bindparam("document_id"))
)


def document_id(body: str) -> str:
    """The id of a document: `sha256:` and the hex SHA-256 of its UTF-8 text, as written."""
    return PREFIX + hashlib.sha256(body.encode()).hexdigest()


def is_document_id(value: str) -> bool:
    """Whether `value` is a SHA256 hex document identifier (`sha256:` + 64 lower-case hex)."""
    return DOCUMENT_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Document:
    """A document to register: its id (checked against its text) and where it came from."""

    id: str
    body: str
    operation_names: tuple[str, ...]


def checked(body: str, *, claimed_id: str | None, where: str) -> Document:
    """A document whose text parses and, when an id is claimed, hashes to it; `where` names
    the entry in the refusal."""
    actual = document_id(body)
    if claimed_id is not None:
        wanted = claimed_id if claimed_id.startswith(PREFIX) else PREFIX + claimed_id
        if wanted != actual:
            raise DomainError(
                ErrorCode.INVALID,
                f"{where}: the id {claimed_id} is not the SHA-256 of its text ({actual})",
            )
    try:
        parsed = parse(body, no_location=True)
    except GraphQLSyntaxError as error:
        raise DomainError(
            ErrorCode.INVALID, f"{where}: not a GraphQL document: {error.message}"
        ) from None
    names = tuple(
        definition.name.value if definition.name else "(anonymous)"
        for definition in parsed.definitions
        if isinstance(definition, OperationDefinitionNode)
    )
    if not names:
        raise DomainError(ErrorCode.INVALID, f"{where}: the document holds no operation")
    return Document(actual, body, names)


def from_manifest(text: str | bytes, *, where: str) -> list[Document]:
    """The documents of a persisted-documents manifest (graphql-codegen's client preset:
    a JSON object of id → document text; ids with or without the `sha256:` prefix)."""
    try:
        manifest = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise DomainError(ErrorCode.INVALID, f"{where}: not JSON: {error.msg}") from None
    if not isinstance(manifest, dict):
        raise DomainError(ErrorCode.INVALID, f"{where}: a manifest is an object of id → text")
    documents = []
    for key, body in manifest.items():
        if not isinstance(body, str):
            raise DomainError(ErrorCode.INVALID, f"{where}, entry {key}: the text is not a string")
        documents.append(checked(body, claimed_id=key, where=f"{where}, entry {key}"))
    return documents


async def register(
    session: AsyncSession, *, documents: Sequence[Document], source: str, now: datetime
) -> list[tuple[Document, bool]]:
    """Register documents (each with whether it is new: registering one again changes
    nothing), in the caller's transaction."""
    label = source[:MAX_SOURCE]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    added = []
    for document in documents:
        statement = (
            insert(TrustedDocument)
            .values(
                id=document.id,
                body=document.body,
                operation_names=", ".join(document.operation_names)[:MAX_NAMES],
                source=label,
                added_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(TrustedDocument.id)
        )
        added.append((document, await session.scalar(statement) is not None))
    return added


async def list_documents(session: AsyncSession) -> Iterable[TrustedDocument]:
    """Every registered document, oldest first."""
    return await session.scalars(
        select(TrustedDocument).order_by(TrustedDocument.added_at, TrustedDocument.id)
    )


class DocumentRegistry:
    """The registered documents this process has looked up, by id. A document never changes
    (its id is its hash), so a found one is kept for good; a missing one is asked for again
    each time, so one registered meanwhile (by another process) is found."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._bodies: dict[str, str] = {}
        # ids anonymous callers asked for and that were not registered: asked again by an
        # anonymous caller, they are not looked up again (a token's request looks again, so a
        # document registered since is found; an unknown token costs a look-up too)
        self._unknown: set[str] = set()

    async def find(
        self, db: SharedSession, document_id: str, *, anonymous: bool = False
    ) -> str | None:
        """The text of the registered document `document_id`, or None."""
        body = self._bodies.get(document_id)
        if body is not None:
            return body
        if anonymous and document_id in self._unknown:
            return None
        found = await db.fetch_all(BODY_BY_ID, {"document_id": document_id})
        if not found:
            if anonymous:
                if len(self._unknown) >= self.max_entries:
                    self._unknown.clear()
                self._unknown.add(document_id)
            return None
        body = str(found[0][0])
        if len(self._bodies) >= self.max_entries:  # only the registry's size: a bound, not LRU
            self._bodies.clear()
        self._bodies[document_id] = body
        return body
