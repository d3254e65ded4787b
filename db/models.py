"""Every table of the domain (SPEC §2), with the constraints that keep the data honest."""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    event,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, Unmapped, mapped_column, unmapped_column
from sqlalchemy.sql.functions import FunctionElement

from db.base import Amount, Base, BigId, ExactDecimal, Json, UTCDateTime
from db.enums import (
    BulkItemState,
    BulkJobStatus,
    ClientStatus,
    ConnectionStatus,
    ConnectionType,
    CustomFieldType,
    EntryKind,
    MailStatus,
    PaymentMethod,
    StaffRole,
    TallyDimension,
    TokenKind,
)


def enum_type(enum: type[StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint listing the enum's values (portable, easy to extend)."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum),
        values_callable=lambda members: [member.value for member in members],
    )


def now_default() -> Any:
    return func.current_timestamp()


NULLABLE_SORT_COLUMNS = (
    "name",
    "email",
    "country",
    "last_activity_at",
    "valid_till",
    "manager_name",
    "phone",
)
# `block_ends_at` of a client never (or no longer) blocked, and of a block without an end.
# asyncpg reads PostgreSQL's -infinity and infinity as these, and writes these as those.
FAR_PAST = datetime.min.replace(tzinfo=UTC)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class _Moment(FunctionElement[datetime]):
    """FAR_PAST or FAR_FUTURE in a computed column's SQL, as each database stores them:
    PostgreSQL's infinities; on SQLite, which compares moments as text, spelled as stored
    moments are."""

    type = UTCDateTime()
    inherit_cache = True
    moment: ClassVar[datetime]
    infinity: ClassVar[str]


class far_past(_Moment):
    moment = FAR_PAST
    infinity = "-infinity"


class far_future(_Moment):
    moment = FAR_FUTURE
    infinity = "infinity"


@compiles(far_past, "postgresql")
@compiles(far_future, "postgresql")
def _moment_postgresql(element: _Moment, compiler: Any, **kw: Any) -> str:
    return f"TIMESTAMPTZ '{element.infinity}'"


@compiles(far_past, "sqlite")
@compiles(far_future, "sqlite")
def _moment_sqlite(element: _Moment, compiler: Any, **kw: Any) -> str:
    naive = element.moment.replace(tzinfo=None)
    return f"'{naive.isoformat(sep=' ', timespec='microseconds')}'"


BLOCK_ENDS_AT = case(
    (literal_column("blocked_at").is_(None), far_past()),
    else_=func.coalesce(literal_column("blocked_until"), far_future()),
)
# Between the parts of a client's search text: a character no search may contain, so that a
# match never spans two fields.
SEARCH_SEPARATOR = "\x1f"
SEARCH_TEXT = (
    f"lower(login || '{SEARCH_SEPARATOR}' || coalesce(name, '') || '{SEARCH_SEPARATOR}' "
    "|| coalesce(email, ''))"
)


class StaffUser(Base):
    """A person who works in the back office: an admin or an account manager."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(enum_type(StaffRole, "role"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())

    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)


class ApiToken(Base):
    """A bearer credential owned by a staff user; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    kind: Mapped[TokenKind] = mapped_column(enum_type(TokenKind, "kind"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the token that minted this one (tokenCreate): revoking it revokes this one too
    parent_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("api_tokens.id", ondelete="CASCADE")
    )
    # sends only trusted documents (`documentId`), never a query of its own (services/documents.py)
    trusted_documents_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (Index(None, "staff_id"), Index(None, "parent_id"))


class TrustedDocument(Base):
    """A registered GraphQL document, sent by its id instead of its text; the id is the
    SHA-256 of the text, so a row never changes."""

    __tablename__ = "trusted_documents"

    id: Mapped[str] = mapped_column(String(71), primary_key=True)  # "sha256:" + 64 hex digits
    body: Mapped[str] = mapped_column(Text)
    operation_names: Mapped[str] = mapped_column(String(1000))  # comma-separated, for listings
    source: Mapped[str] = mapped_column(String(200))  # where it came from: a file name, a label
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())


class Client(Base):
    """A customer account: identity, contacts, access, block, links, money and activity."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    language: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[ClientStatus] = mapped_column(
        enum_type(ClientStatus, "status"), server_default=ClientStatus.ACTIVE.value
    )
    block_reason: Mapped[str | None] = mapped_column(String(500))
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    # The ledger's sum, kept in the same transaction as every entry (services/ledger.py) so
    # that lists can sort and filter by it; never written anywhere else.
    balance: Mapped[Decimal] = mapped_column(Amount(), server_default=text("0"))
    credit_limit: Mapped[Decimal] = mapped_column(Amount(), server_default=text("0"))
    valid_till: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moderation: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    price_adjustment_percent: Mapped[Decimal] = mapped_column(
        ExactDecimal(7, 2), server_default=text("0")
    )
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    chats_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    support_requests_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    # What the list's `search` looks in, lower-cased once per write instead of per row read:
    # one LIKE on it costs a quarter of three ILIKEs, and one trigram index serves it. Stored
    # on PostgreSQL; on SQLite (no index to keep) migration 0007 makes it computed on read.
    # Not mapped: the database's to compute, SQL's to read (the ORM would reload it after
    # every change).
    search_text: Unmapped[str] = unmapped_column(Text, Computed(SEARCH_TEXT, persisted=True))
    # The manager's name, for sorting by it; the database's triggers keep it (migration 0013).
    manager_name: Unmapped[str | None] = unmapped_column(String(200))
    # The types of the client's connections as bits (CONNECTION_BITS), kept by triggers on
    # client_connections (migration 0016) for the tallies' connection dimension.
    connection_types: Unmapped[int] = unmapped_column(SmallInteger, server_default=text("0"))
    # When the block ends (FAR_PAST if none, FAR_FUTURE if it has no end): blocked now means
    # `block_ends_at > now`, so one index orders the blocked apart from the others at any time.
    block_ends_at: Unmapped[datetime] = unmapped_column(
        UTCDateTime, Computed(BLOCK_ENDS_AT, persisted=True)
    )
    # Counts every change of the client, the ledger's included; the database's triggers keep
    # it (migration 0023), so no write path can miss it. `expectedVersion` compares with it.
    version: Unmapped[int] = unmapped_column(BigId, server_default=text("1"))

    __table_args__ = (
        # Logins are stored lower-cased, so a plain unique index is case-insensitive.
        Index(None, "login", unique=True),
        CheckConstraint("login = lower(login)", name="login_lowercase"),
        CheckConstraint("length(login) BETWEEN 3 AND 64", name="login_length"),
        CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="has_contact"),
        CheckConstraint("length(country) = 2 AND country = upper(country)", name="country_code"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
        CheckConstraint("credit_limit >= 0", name="credit_limit_not_negative"),
        CheckConstraint("balance + credit_limit >= 0", name="balance_within_credit_limit"),
        CheckConstraint("parent_id <> id", name="not_own_parent"),
        CheckConstraint(
            "(blocked_at IS NULL AND block_reason IS NULL AND blocked_until IS NULL)"
            " OR (blocked_at IS NOT NULL AND block_reason IS NOT NULL)",
            name="block_complete",
        ),
        CheckConstraint("chats_count >= 0 AND support_requests_count >= 0", name="counts"),
        # The stored scale differs by dialect (see ExactDecimal), so the bounds do too.
        CheckConstraint(
            "price_adjustment_percent > -100 AND price_adjustment_percent <= 1000",
            name="price_adjustment_range",
        ).ddl_if(dialect="postgresql"),
        CheckConstraint(
            "price_adjustment_percent > -10000 AND price_adjustment_percent <= 100000",
            name="price_adjustment_range_sqlite",
        ).ddl_if(dialect="sqlite"),
        # Every sort key ends in the id, which keyset pagination needs.
        Index(None, "created_at", "id"),
        Index(None, "name", "id"),
        Index(None, "email", "id"),
        Index(None, "country", "id"),
        Index(None, "currency", "id"),
        Index(None, "status", "id"),
        Index(None, "last_activity_at", "id"),
        Index(None, "balance", "id"),
        Index(None, "valid_till", "id"),
        Index(None, "manager_id", "id"),
        Index(None, "parent_id", "id"),
        Index(None, "manager_name", "id"),
        Index(None, "phone", "id"),
        # the block's end first (BLOCKED sorts by it), then what the filter panel's counts
        # of blocked clients look at, connection types included: they read the index alone
        # (gql/clients/facets.py)
        Index(
            "ix_clients_block_ends_at_id",
            "block_ends_at",
            "id",
            "status",
            "country",
            "currency",
            "manager_id",
            "parent_id",
            "connection_types",
        ),
        Index(None, "credit_limit", "id"),
        Index(None, "chats_count", "id"),
        Index(None, "support_requests_count", "id"),
        Index(None, "updated_at", "id"),
        # BALANCE sorts by currency first: amounts in different currencies do not compare.
        Index(None, "currency", "balance", "id"),
        # A client's currency follows its country: sorted by one then the other (or BALANCE),
        # the rows of one value lie far apart in the other's index, so the pairs have their
        # own (a page reads a value's clients from the position on; db/keyset.py).
        Index(None, "country", "currency", "balance", "id"),
        Index(None, "country", "currency", "id"),
        Index(None, "currency", "country", "id"),
        Index(
            "ix_clients_currency_country_desc_id",
            "currency",
            text("country DESC NULLS LAST"),
            text("id DESC"),
        ).ddl_if(dialect="postgresql"),
        # SQLite: the list's default order with the search text (computed on read there), so a
        # common search walks the newest clients without reading the table (db/search.py).
        Index("ix_clients_created_at_id_search_text", "created_at", "id", "search_text").ddl_if(
            dialect="sqlite"
        ),
        # PostgreSQL walks an index backwards for DESC, which puts NULLs first; for the NULLs
        # last that the API promises, the optional sort columns need a DESC NULLS LAST index.
        *(
            Index(
                f"ix_clients_{name}_desc_id", text(f"{name} DESC NULLS LAST"), text("id DESC")
            ).ddl_if(dialect="postgresql")
            for name in NULLABLE_SORT_COLUMNS
        ),
        # Substring search (`LIKE '%abc%'`) through trigram indexes (pg_trgm).
        *(
            Index(
                f"ix_clients_{name}_trgm",
                name,
                postgresql_using="gin",
                postgresql_ops={name: "gin_trgm_ops"},
            ).ddl_if(dialect="postgresql")
            for name in ("login", "email", "phone", "search_text")
        ),
    )


class ClientConnection(Base):
    """How a client connects (SMPP bind, HTTP API, SMTP relay, web cabinet) and whether it is up."""

    __tablename__ = "client_connections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    type: Mapped[ConnectionType] = mapped_column(enum_type(ConnectionType, "type"))
    status: Mapped[ConnectionStatus] = mapped_column(enum_type(ConnectionStatus, "status"))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("client_id", "type"),
        Index(None, "type", "status", "client_id"),
    )


class CreditEntry(Base):
    """One immutable line of a client's ledger; the balance is the sum of these."""

    __tablename__ = "credit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: a deleted client's entries stay (its row moves to deleted_clients, and
    # its id is never given to another client).
    client_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[EntryKind] = mapped_column(enum_type(EntryKind, "kind"))
    amount: Mapped[Decimal] = mapped_column(Amount())
    currency: Mapped[str] = mapped_column(String(3))
    balance_after: Mapped[Decimal] = mapped_column(Amount())
    payment_method: Mapped[PaymentMethod | None] = mapped_column(
        enum_type(PaymentMethod, "payment_method")
    )
    payment_reference: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(String(1000))
    # A payment may pay for access until a later date; the client's validTill moved here.
    valid_till_set: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What validTill was before this entry moved it (None: unset, or the entry moved nothing):
    # a reversal takes back exactly the extension a payment granted.
    valid_till_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # NO ACTION (checked at the end of the statement): deleting a client removes an entry
    # and its reversal together, in whatever order the cascade visits them.
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("credit_entries.id"), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())

    __table_args__ = (
        CheckConstraint("amount <> 0 OR kind = 'CREDIT_NOTE'", name="amount_not_zero"),
        CheckConstraint("kind <> 'PAYMENT' OR amount > 0", name="payment_positive"),
        CheckConstraint("kind <> 'DEDUCTION' OR amount < 0", name="deduction_negative"),
        CheckConstraint("(kind = 'REVERSAL') = (reverses_id IS NOT NULL)", name="reversal_link"),
        Index(None, "client_id", "id"),
    )


class CreditNoteLine(Base):
    """A line of a credit note; lines may be negative (a package taken back)."""

    __tablename__ = "credit_note_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("credit_entries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[Decimal] = mapped_column(Amount())
    amount: Mapped[Decimal] = mapped_column(Amount())

    __table_args__ = (
        UniqueConstraint("entry_id", "position"),
        # -1 x a package takes one back; so does 1 x a negative unit amount
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
    )


class ClientPasswordToken(Base):
    """A one-time link for a client to set a password; only its SHA-256 is stored."""

    __tablename__ = "client_password_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "client_id"),)


class CabinetSession(Base):
    """A client's cabinet opened by a staff user ("In cabinet"), checked again on every use:
    its token names this row, so it can be revoked and outlives none of its grounds."""

    __tablename__ = "cabinet_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    api_token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    # opened by an admin over a block or an inactive status (`force`)
    forced: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    revoked_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index(None, "client_id"),)


class IdempotencyKey(Base):
    """The remembered outcome of a money mutation, so that a retried request applies once."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("staff_id", "key"), Index(None, "expires_at"))


class Package(Base):
    """A price-list item; its price per currency is in PackagePrice."""

    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())


class PackagePrice(Base):
    """A package's base price in one currency."""

    __tablename__ = "package_prices"

    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Amount())

    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)


class Department(Base):
    """A helpdesk department a client may be allowed to reach."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Category(Base):
    """A helpdesk category a client may be allowed to use."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


# None selected means the client may access all of them.
client_departments = Table(
    "client_departments",
    Base.metadata,
    Column("client_id", ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)

client_categories = Table(
    "client_categories",
    Base.metadata,
    Column("client_id", ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True),
)


class CustomFieldDefinition(Base):
    """An admin-defined extra field every client may hold a value for."""

    __tablename__ = "custom_field_definitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[CustomFieldType] = mapped_column(enum_type(CustomFieldType, "type"))
    options: Mapped[list[str] | None] = mapped_column(Json)
    required: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())


class CustomFieldValue(Base):
    """A client's value for one custom field, as JSON of the definition's type."""

    __tablename__ = "client_custom_field_values"

    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("custom_field_definitions.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[Any] = mapped_column(Json)


class AuditEntry(Base):
    """Who changed what, when, with the values before and after (kept after the target is gone)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigId)
    target_label: Mapped[str | None] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(Json)
    after: Mapped[dict[str, Any] | None] = mapped_column(Json)
    reason: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "target_type", "target_id", "id"),
        Index(None, "actor_id", "id"),
        Index(None, "action", "id"),
        Index(None, "occurred_at", "id"),
    )


class ClientChange(Base):
    """A client's latest change, for the incremental sync (`clientChanges`): one row per client
    ever made, a tombstone once it is deleted. Written only by the triggers on clients
    (migration 0023): `position` orders changes as they commit (the writing transaction's id
    on PostgreSQL, read only below the reader's snapshot xmin; a counter on SQLite)."""

    __tablename__ = "client_changes"

    client_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigId)
    deleted: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "position", "client_id"),)


class ClientChangeBase(Base):
    """What PostgreSQL adds to a transaction id to make a change's position (one row): raised
    when the database was restored into a cluster whose ids are lower than the positions it
    holds (db/migrate.py `keep_change_positions`), so positions keep growing."""

    __tablename__ = "client_change_base"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    base: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class DeletedClient(Base):
    """A deleted client: its id (never given again; its ledger entries keep it), login, who
    deleted it and when, and the snapshot the audit log has too."""

    __tablename__ = "deleted_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    login: Mapped[str] = mapped_column(String(64))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    snapshot: Mapped[dict[str, Any]] = mapped_column(Json)
    # kept apart from the snapshot (which the audit log copies), so a restored client signs in
    # as before; None for clients deleted before restores existed
    password_hash: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        # a deleted client's login stays reserved until it is purged
        Index(None, "login"),
        Index(None, "deleted_at", "id"),
    )


class BulkJob(Base):
    """A bulk action on a selection larger than a request runs (services/bulk_jobs.py): the
    clients it was started on are its items, worked through in chunks by the job workers."""

    __tablename__ = "bulk_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    action: Mapped[dict[str, Any]] = mapped_column(Json)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[BulkJobStatus] = mapped_column(
        enum_type(BulkJobStatus, "status"), server_default=BulkJobStatus.QUEUED.value
    )
    total: Mapped[int] = mapped_column(Integer)
    changed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    unchanged: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    refused: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    failure: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "created_by_id", "id"),
        Index(None, "status", "id"),
    )


class BulkJobItem(Base):
    """One client of a bulk job: pending until its chunk commits, then what was done to it
    (in the transaction that did it, so a client is never done twice nor skipped)."""

    __tablename__ = "bulk_job_items"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("bulk_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    # sub-accounts (0) before top-level clients (1): a deletion takes a parent's selected
    # sub-accounts first. No foreign key: the client may be deleted since.
    rank: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    state: Mapped[BulkItemState] = mapped_column(
        enum_type(BulkItemState, "state"), server_default=BulkItemState.PENDING.value
    )
    code: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index(None, "job_id", "state", "rank", "client_id"),)


NEXT_SQLITE_CLIENT_ID = "clientdesk_next_client_id"


@event.listens_for(Client, "before_insert")
def _client_id_past_deleted_ones(_mapper: Any, connection: Connection, client: Client) -> None:
    # SQLite gives a new row the highest rowid + 1, so the id of the newest client, once it is
    # deleted, would be given again (its ledger entries and audit entries keep it). Under the
    # write lock the insert holds, a new client gets an id past every client's, deleted
    # client's and purged client's (each has the audit entry of its deletion; and past those
    # given earlier in the same transaction, whose rows a flush inserts after this hook ran
    # for each). PostgreSQL's identity never reuses one.
    if connection.dialect.name != "sqlite" or client.id is not None:
        return
    audited = (
        select(func.coalesce(func.max(AuditEntry.target_id), 0))
        .where(AuditEntry.target_type == "Client")
        .scalar_subquery()
    )
    highest = connection.scalar(
        select(
            func.max(
                select(func.coalesce(func.max(Client.id), 0)).scalar_subquery(),
                select(func.coalesce(func.max(DeletedClient.id), 0)).scalar_subquery(),
                audited,
            )
        )
    )
    transaction = connection.get_transaction()
    earlier, last_given = connection.info.get(NEXT_SQLITE_CLIENT_ID, (None, 0))
    given = max(int(highest or 0), last_given if earlier is transaction else 0) + 1
    connection.info[NEXT_SQLITE_CLIENT_ID] = (transaction, given)
    client.id = given


CONNECTION_BITS = {"SMPP": 1, "HTTP": 2, "SMTP": 4, "WEB": 8}  # clients.connection_types
BILLING_MODE_KEY = "billing_mode"  # on (true) by default: a missing row means on


class SystemSetting(Base):
    """One system-wide setting an admin changes through the API (services/system_settings.py);
    a setting without a row has its default."""

    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )


class RateLimitBucket(Base):
    """A token bucket of the rate limiter, when it keeps its counters in the database."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClientTally(Base):
    """How many clients have a status and a value of one filter dimension.

    Triggers keep it in the transactions that insert, change or delete clients (migration
    0006), so the list's totalCount for common filters is a sum of a few rows, exact, instead of
    a count over a large part of the table.
    """

    __tablename__ = "client_tallies"

    dimension: Mapped[TallyDimension] = mapped_column(
        enum_type(TallyDimension, "dimension"), primary_key=True
    )
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[ClientStatus] = mapped_column(
        enum_type(ClientStatus, "status"), primary_key=True
    )
    n: Mapped[int] = mapped_column(BigInteger)


class ClientPairTally(Base):
    """How many clients have a status, a value of one dimension and a value of another:
    each pair of the tallied dimensions (all but ALL) in both orders.

    Kept by triggers like ClientTally (migration 0015): the filter panel's counts for a filter
    on one dimension are sums of a few of these rows (gql/clients/facets.py).
    """

    __tablename__ = "client_pair_tallies"

    by_dimension: Mapped[TallyDimension] = mapped_column(
        enum_type(TallyDimension, "by_dimension"), primary_key=True
    )
    by_value: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[TallyDimension] = mapped_column(
        enum_type(TallyDimension, "dimension"), primary_key=True
    )
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[ClientStatus] = mapped_column(
        enum_type(ClientStatus, "status"), primary_key=True
    )
    n: Mapped[int] = mapped_column(BigInteger)


class MailMessage(Base):
    """An e-mail waiting in the outbox, written in the transaction that caused it."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[MailStatus] = mapped_column(
        enum_type(MailStatus, "status"), server_default=MailStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=now_default())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # what the message is, where a client's page shows its state ("login_details")
    kind: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "client_id", "kind", "id"),
    )
