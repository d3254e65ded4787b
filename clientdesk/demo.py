"""Realistic, varied, deterministic demo data, written in bulk (COPY on PostgreSQL).

Same seed and same `now`, same rows. Rows are generated in chunks as plain tuples and written
with one COPY (PostgreSQL) or one executemany (SQLite) per table and chunk, never as ORM
objects, so that a million clients take minutes, not hours.
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import phonenumbers
from babel.numbers import get_currency_precision
from sqlalchemy import JSON, Integer, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.enums import (
    ClientStatus,
    ConnectionStatus,
    ConnectionType,
    CustomFieldType,
    EntryKind,
    PaymentMethod,
    StaffRole,
)
from db.models import (
    Category,
    Client,
    ClientConnection,
    CreditEntry,
    CreditNoteLine,
    CustomFieldDefinition,
    CustomFieldValue,
    Department,
    Package,
    PackagePrice,
    StaffUser,
    client_categories,
    client_departments,
)
from services.auth import hash_password

DEMO_ADMIN_EMAIL = "admin@clientdesk.test"
DEMO_ADMIN_PASSWORD = "clientdesk-demo-admin"
DEMO_MANAGER_EMAIL = "manager@clientdesk.test"
DEMO_MANAGER_PASSWORD = "clientdesk-demo-manager"
DEMO_CLIENT_PASSWORD = "clientdesk-demo-client"
CHUNK = 10_000
# The first clients of an empty database, with names the README's examples use.
SHOWCASE: dict[int, dict[str, Any]] = {
    1: {"login": "acme", "name": "Acme Telecom", "country": "DE"},
    2: {"login": "acme.marketing", "name": "Acme Marketing", "country": "DE", "parent_id": 1},
    3: {"login": "globex", "name": "Globex Japan", "country": "JP"},
    4: {"login": "initech", "name": "Initech Kuwait", "country": "KW", "blocked": True},
}
CLIENTS = cast(Table, Client.__table__)
CREDIT_ENTRIES = cast(Table, CreditEntry.__table__)
CREDIT_NOTE_LINES = cast(Table, CreditNoteLine.__table__)
CLIENT_CONNECTIONS = cast(Table, ClientConnection.__table__)
CUSTOM_FIELD_VALUES = cast(Table, CustomFieldValue.__table__)

# country: (weight, currency, language)
COUNTRIES: dict[str, tuple[int, str, str]] = {
    "US": (20, "USD", "en"),
    "GB": (10, "GBP", "en-GB"),
    "DE": (10, "EUR", "de"),
    "FR": (7, "EUR", "fr"),
    "ES": (5, "EUR", "es"),
    "IT": (5, "EUR", "it"),
    "NL": (4, "EUR", "nl"),
    "PL": (4, "PLN", "pl"),
    "JP": (6, "JPY", "ja"),
    "KW": (3, "KWD", "ar"),
    "AE": (3, "AED", "ar"),
    "IN": (8, "INR", "hi"),
    "BR": (6, "BRL", "pt-BR"),
    "ZA": (3, "ZAR", "en-ZA"),
    "NG": (3, "NGN", "en"),
    "CA": (3, "CAD", "fr-CA"),
}
FIRST_NAMES = (
    "Anna Ben Carla David Elena Farid Grace Hiro Ines Jonas Kemi Liam Maya Noah Olga Pedro "
    "Quinn Rosa Sami Tara Umar Vera Wen Ximena Yusuf Zoe Arjun Bianca Chen Dario Emeka Fatima"
).split()
LAST_NAMES = (
    "Smith Müller Dubois García Rossi Jansen Kowalski Tanaka Al-Sabah Haddad Sharma Silva "
    "Naidoo Okafor Tremblay Brown Schmidt Martin López Bianchi de Vries Nowak Sato Patel"
).split()
COMPANY_WORDS = (
    "Acme Blue Nova Orbit Pixel Quantum Rapid Solar Terra Vertex Zenith Alpha Beacon Cedar "
    "Delta Echo Falcon Granite Harbor Iris Jade Kite Lumen Maple Nimbus Onyx Prism"
).split()
COMPANY_KINDS = "Telecom Travel Retail Logistics Health Media Bank Foods Labs Studio".split()
DOMAINS = "example.com example.org example.net mail.test corp.test".split()
PAYMENT_METHODS = tuple(PaymentMethod)
PACKAGES: dict[str, Decimal] = {  # name: base price in USD
    "SMS Starter 1k": Decimal("9.90"),
    "SMS Business 10k": Decimal("79.00"),
    "SMS Enterprise 100k": Decimal("650.00"),
    "Voice Minutes 500": Decimal("25.00"),
    "Sender ID Registration": Decimal("15.00"),
    "Dedicated Short Code": Decimal("1200.00"),
    "Helpdesk Seat": Decimal("19.00"),
    "Priority Support": Decimal("99.00"),
}
# Rough value of one USD, for package prices in other currencies.
USD_RATE: dict[str, Decimal] = {
    "USD": Decimal(1),
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "PLN": Decimal("3.95"),
    "JPY": Decimal(150),
    "KWD": Decimal("0.307"),
    "AED": Decimal("3.67"),
    "INR": Decimal(83),
    "BRL": Decimal("5.0"),
    "ZAR": Decimal("18.5"),
    "NGN": Decimal(1500),
    "CAD": Decimal("1.36"),
}
DEPARTMENTS = ("Sales", "Support", "Billing", "Technical")
CATEGORIES = ("General", "Invoices", "Outages", "API", "Sender IDs")
CUSTOM_FIELDS: tuple[tuple[str, str, CustomFieldType, list[str] | None], ...] = (
    ("vat_number", "VAT number", CustomFieldType.TEXT, None),
    ("employees", "Employees", CustomFieldType.NUMBER, None),
    ("newsletter", "Newsletter", CustomFieldType.BOOLEAN, None),
    ("contract_signed", "Contract signed", CustomFieldType.DATE, None),
    ("tier", "Tier", CustomFieldType.SELECT, ["bronze", "silver", "gold"]),
)


@dataclass
class Reference:
    """Ids of the rows the clients point at."""

    manager_ids: list[int]
    admin_id: int
    package_ids: list[int]
    package_prices: dict[tuple[int, str], Decimal]
    department_ids: list[int]
    category_ids: list[int]
    custom_fields: list[tuple[int, CustomFieldType, list[str] | None]]


@dataclass
class Chunk:
    """The rows of one chunk of clients, per table, as dicts keyed by column name."""

    rows: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: Table, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)


async def seed_demo_data(
    engine: AsyncEngine,
    *,
    clients: int,
    seed: int = 42,
    if_empty: bool = False,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> int:
    """Add `clients` demo clients (and staff, packages, ledgers…); returns how many were added."""
    now = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    async with engine.begin() as connection:
        if if_empty and await connection.scalar(select(func.count()).select_from(Client)):
            return 0
        reference = await _reference_data(connection, rng, clients)
        next_id = (await connection.scalar(select(func.max(Client.id)))) or 0
        next_entry_id = (await connection.scalar(select(func.max(CreditEntry.id)))) or 0
        client_hash = hash_password(DEMO_CLIENT_PASSWORD)
        done = 0
        while done < clients:
            size = min(CHUNK, clients - done)
            generator = _ChunkGenerator(rng, reference, now, client_hash)
            chunk = generator.generate(
                first_id=next_id + 1, count=size, first_entry_id=next_entry_id + 1
            )
            await _write_chunk(connection, chunk)
            next_id += size
            next_entry_id = generator.last_entry_id
            done += size
            if done % 100_000 == 0 or done == clients:
                progress(f"  {done:,} / {clients:,} clients")
        await _reset_sequences(connection)
    # Fresh statistics: without them the planner guesses, and a page that takes a millisecond
    # took ten in a measured run right after seeding (PostgreSQL's autovacuum comes later;
    # SQLite has none and sorted the whole list for want of them).
    async with engine.begin() as connection:
        await connection.execute(text("ANALYZE"))
    return clients


async def _reference_data(
    connection: AsyncConnection, rng: random.Random, clients: int
) -> Reference:
    """Staff, packages, departments, categories and custom fields: created once, then reused."""
    admin_id = await connection.scalar(
        select(StaffUser.id).where(StaffUser.email == DEMO_ADMIN_EMAIL)
    )
    if admin_id is None:
        manager_count = min(1000, max(5, clients // 1000))
        manager_hash = hash_password(DEMO_MANAGER_PASSWORD)
        staff = [
            {
                "email": DEMO_ADMIN_EMAIL,
                "name": "Ada Admin",
                "role": StaffRole.ADMIN,
                "password_hash": hash_password(DEMO_ADMIN_PASSWORD),
            },
            {
                "email": DEMO_MANAGER_EMAIL,
                "name": "Max Manager",
                "role": StaffRole.MANAGER,
                "password_hash": manager_hash,
            },
        ]
        for n in range(2, manager_count + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}.{n}".lower().replace(" ", "").replace("ü", "u")
            staff.append(
                {
                    "email": f"{email}@clientdesk.test",
                    "name": f"{first} {last}",
                    "role": StaffRole.MANAGER,
                    "password_hash": manager_hash,
                }
            )
        await connection.execute(insert(StaffUser), staff)
        await connection.execute(insert(Department), [{"name": name} for name in DEPARTMENTS])
        await connection.execute(insert(Category), [{"name": name} for name in CATEGORIES])
        await connection.execute(
            insert(CustomFieldDefinition),
            [
                {"key": key, "label": label, "type": type_, "options": options, "position": n}
                for n, (key, label, type_, options) in enumerate(CUSTOM_FIELDS)
            ],
        )
        for name, usd in PACKAGES.items():
            package_id = await connection.scalar(
                insert(Package)
                .values(name=name, description=f"{name} package")
                .returning(Package.id)
            )
            await connection.execute(
                insert(PackagePrice),
                [
                    {
                        "package_id": package_id,
                        "currency": currency,
                        "amount": _round_to_currency(usd * rate, currency),
                    }
                    for currency, rate in USD_RATE.items()
                ],
            )
        admin_id = await connection.scalar(
            select(StaffUser.id).where(StaffUser.email == DEMO_ADMIN_EMAIL)
        )
    assert admin_id is not None
    managers = await connection.scalars(
        select(StaffUser.id).where(StaffUser.role == StaffRole.MANAGER).order_by(StaffUser.id)
    )
    prices = (
        await connection.execute(
            select(PackagePrice.package_id, PackagePrice.currency, PackagePrice.amount)
        )
    ).all()
    fields = await connection.execute(
        select(
            CustomFieldDefinition.id, CustomFieldDefinition.type, CustomFieldDefinition.options
        ).order_by(CustomFieldDefinition.id)
    )
    return Reference(
        manager_ids=list(managers),
        admin_id=admin_id,
        package_ids=sorted({row.package_id for row in prices}),
        package_prices={(row.package_id, row.currency): row.amount for row in prices},
        department_ids=list(
            await connection.scalars(select(Department.id).order_by(Department.id))
        ),
        category_ids=list(await connection.scalars(select(Category.id).order_by(Category.id))),
        custom_fields=[(row.id, row.type, row.options) for row in fields],
    )


def _round_to_currency(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency)))


class _ChunkGenerator:
    """Generates one chunk of clients with everything that hangs off them."""

    def __init__(
        self, rng: random.Random, reference: Reference, now: datetime, password_hash: str
    ) -> None:
        self.rng = rng
        self.ref = reference
        self.now = now
        self.password_hash = password_hash
        self.countries = list(COUNTRIES)
        self.weights = [COUNTRIES[c][0] for c in self.countries]
        self.last_entry_id = 0

    def generate(self, *, first_id: int, count: int, first_entry_id: int) -> Chunk:
        chunk = Chunk()
        self.entry_id = first_entry_id - 1
        parents_by_currency: dict[str, list[int]] = {}
        for client_id in range(first_id, first_id + count):
            row = self._client(client_id, parents_by_currency)
            chunk.add(CLIENTS, row)
            if row["parent_id"] is None:
                parents_by_currency.setdefault(row["currency"], []).append(client_id)
            self._ledger(chunk, row)
            self._connections(chunk, row)
            self._extras(chunk, row)
        self.last_entry_id = self.entry_id
        return chunk

    def _client(self, client_id: int, parents: dict[str, list[int]]) -> dict[str, Any]:
        rng, now = self.rng, self.now
        country = rng.choices(self.countries, self.weights)[0]
        _, currency, language = COUNTRIES[country]
        if rng.random() < 0.1:
            currency = "USD"
        if rng.random() < 0.6:
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
        else:
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        slug = "".join(
            ch
            for ch in name.lower().replace(" ", ".")
            if ch.isascii() and (ch.isalnum() or ch == ".")
        )
        login = f"{slug}.{client_id}"
        showcase = SHOWCASE.get(client_id, {})
        if showcase:  # the first clients of an empty database have names the README uses
            login, name, country = showcase["login"], showcase["name"], showcase["country"]
            _, currency, language = COUNTRIES[country]
        contact = rng.random()
        email = f"{login}@{rng.choice(DOMAINS)}" if contact < 0.9 else None
        phone = _phone(rng, country) if contact > 0.15 or email is None else None
        created_at = now - timedelta(seconds=rng.randrange(2 * 365 * 86400))
        last_activity = (
            None
            if rng.random() < 0.1
            else created_at + (now - created_at) * (1 - rng.random() ** 3)
        )
        blocked = rng.random() < 0.06
        block_kind = rng.random()
        precision = get_currency_precision(currency)
        scale = Decimal(1).scaleb(-precision)
        limit_units = rng.choice((0, 0, 0, 0, 100, 500, 1000, 5000))
        parent_id = None
        if rng.random() < 0.06 and parents.get(currency):
            parent_id = rng.choice(parents[currency][-200:])
        if showcase:
            parent_id = showcase.get("parent_id")
            blocked, block_kind = showcase.get("blocked", False), 0.5
        row = {
            "id": client_id,
            "login": login,
            "password_hash": self.password_hash,
            "name": name if rng.random() < 0.97 else None,
            "email": email,
            "phone": phone,
            "country": country if rng.random() < 0.95 else None,
            "currency": currency,
            "language": language if rng.random() < 0.8 else None,
            "status": ClientStatus.ACTIVE if rng.random() < 0.85 else ClientStatus.INACTIVE,
            "block_reason": rng.choice(
                ("Unpaid invoice", "Spam complaints", "Fraud check", "Requested by client")
            )
            if blocked
            else None,
            "blocked_at": now - timedelta(days=rng.randrange(1, 90)) if blocked else None,
            "blocked_until": (
                None
                if not blocked or block_kind < 0.4
                else now + timedelta(days=rng.randrange(1, 60))
                if block_kind < 0.8
                else now - timedelta(hours=rng.randrange(1, 500))  # expired: no longer blocked
            ),
            "blocked_by_id": self.ref.admin_id if blocked else None,
            "manager_id": rng.choice(self.ref.manager_ids) if rng.random() < 0.8 else None,
            "parent_id": parent_id,
            "balance": Decimal(0),
            "credit_limit": (Decimal(limit_units) * USD_RATE[currency]).quantize(scale),
            "valid_till": now + timedelta(days=rng.randrange(-60, 365))
            if rng.random() < 0.4
            else None,
            "moderation": rng.random() < 0.1,
            "avatar_url": f"https://avatars.clientdesk.test/{client_id}.png"
            if rng.random() < 0.3
            else None,
            "price_adjustment_percent": (
                Decimal(0) if rng.random() < 0.7 else Decimal(rng.randrange(-2000, 2501)).scaleb(-2)
            ),
            "last_activity_at": last_activity,
            "chats_count": int(rng.expovariate(1 / 6)),
            "support_requests_count": int(rng.expovariate(1 / 3)),
            "created_at": created_at,
            "updated_at": max(created_at, last_activity or created_at),
        }
        if showcase:
            row["manager_id"] = self.ref.manager_ids[0]
            row["status"] = ClientStatus.ACTIVE
            row["country"] = country
        return row

    def _ledger(self, chunk: Chunk, client: dict[str, Any]) -> None:
        """Payments, deductions, credit notes (some negative) and reversals, in time order."""
        rng, currency = self.rng, client["currency"]
        scale = Decimal(1).scaleb(-get_currency_precision(currency))
        rate = USD_RATE[currency]
        balance = Decimal(0)
        floor = -client["credit_limit"]
        moment = client["created_at"]
        payments: list[tuple[int, Decimal]] = []
        for _ in range(rng.choice((0, 1, 2, 3, 3, 4, 5, 6))):
            moment = moment + (self.now - moment) * rng.random() * 0.5
            kind = rng.choices(
                (EntryKind.PAYMENT, EntryKind.DEDUCTION, EntryKind.CREDIT_NOTE, EntryKind.REVERSAL),
                (50, 30, 15, 5),
            )[0]
            lines: list[dict[str, Any]] = []
            reverses = None
            if kind is EntryKind.PAYMENT:
                amount = (Decimal(rng.randrange(10, 2000)) * rate).quantize(scale)
            elif kind is EntryKind.DEDUCTION:
                amount = -(Decimal(rng.randrange(1, 500)) * rate).quantize(scale)
            elif kind is EntryKind.CREDIT_NOTE:
                for position in range(rng.randint(1, 3)):
                    package_id = rng.choice(self.ref.package_ids)
                    unit = self.ref.package_prices[(package_id, currency)]
                    quantity = rng.randint(1, 3)
                    sign = -1 if rng.random() < 0.35 else 1  # a package taken back
                    lines.append(
                        {
                            "position": position,
                            "description": f"Package #{package_id}",
                            "package_id": package_id,
                            "quantity": quantity,
                            "unit_amount": sign * unit,
                            "amount": sign * unit * quantity,
                        }
                    )
                amount = sum((line["amount"] for line in lines), Decimal(0))
            else:
                if not payments:
                    continue
                reversed_id, paid = payments.pop(rng.randrange(len(payments)))
                amount, reverses = -paid, reversed_id
            if balance + amount < floor or (amount == 0 and kind is not EntryKind.CREDIT_NOTE):
                continue
            balance += amount
            self.entry_id += 1
            chunk.add(
                CREDIT_ENTRIES,
                {
                    "id": self.entry_id,
                    "client_id": client["id"],
                    "kind": kind,
                    "amount": amount,
                    "currency": currency,
                    "balance_after": balance,
                    "payment_method": rng.choice(PAYMENT_METHODS)
                    if kind is EntryKind.PAYMENT
                    else None,
                    "payment_reference": f"PAY-{self.entry_id:08d}"
                    if kind is EntryKind.PAYMENT
                    else None,
                    "comment": {
                        EntryKind.REVERSAL: "Incorrect payment",
                        EntryKind.DEDUCTION: "Manual deduction",
                    }.get(kind),
                    "reverses_id": reverses,
                    "created_by_id": self.ref.admin_id,
                    "created_at": moment,
                },
            )
            for line in lines:
                chunk.add(CREDIT_NOTE_LINES, {"entry_id": self.entry_id, **line})
            if kind is EntryKind.PAYMENT:
                payments.append((self.entry_id, amount))
        client["balance"] = balance

    def _connections(self, chunk: Chunk, client: dict[str, Any]) -> None:
        rng = self.rng
        if rng.random() < 0.35:
            return
        for type_ in rng.sample(list(ConnectionType), rng.randint(1, 3)):
            online = rng.random() < 0.4
            seen = client["last_activity_at"] or client["created_at"]
            chunk.add(
                CLIENT_CONNECTIONS,
                {
                    "client_id": client["id"],
                    "type": type_,
                    "status": ConnectionStatus.ONLINE if online else ConnectionStatus.OFFLINE,
                    "last_seen_at": self.now if online else seen,
                },
            )

    def _extras(self, chunk: Chunk, client: dict[str, Any]) -> None:
        rng = self.rng
        if rng.random() < 0.3:
            for department_id in rng.sample(self.ref.department_ids, rng.randint(1, 2)):
                chunk.add(
                    client_departments, {"client_id": client["id"], "department_id": department_id}
                )
        if rng.random() < 0.2:
            for category_id in rng.sample(self.ref.category_ids, rng.randint(1, 3)):
                chunk.add(
                    client_categories, {"client_id": client["id"], "category_id": category_id}
                )
        if rng.random() < 0.5:
            for definition_id, type_, options in self.ref.custom_fields:
                if rng.random() < 0.5:
                    continue
                value: Any = {
                    CustomFieldType.TEXT: f"EU{rng.randrange(10**8, 10**9)}",
                    CustomFieldType.NUMBER: rng.randrange(1, 5000),
                    CustomFieldType.BOOLEAN: rng.random() < 0.5,
                    CustomFieldType.DATE: (client["created_at"] + timedelta(days=rng.randrange(30)))
                    .date()
                    .isoformat(),
                    CustomFieldType.SELECT: rng.choice(options or [""]),
                }[type_]
                chunk.add(
                    CUSTOM_FIELD_VALUES,
                    {"client_id": client["id"], "definition_id": definition_id, "value": value},
                )


_PHONE_EXAMPLES: dict[str, phonenumbers.PhoneNumber] = {}


def _phone(rng: random.Random, country: str) -> str:
    """A plausible mobile number of `country` in E.164: its example number, last digits varied."""
    example = _PHONE_EXAMPLES.get(country)
    if example is None:
        found = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
        assert found is not None, f"phonenumbers has no example mobile number for {country}"
        example = _PHONE_EXAMPLES[country] = found
    national = str(example.national_number)
    varied = national[:-4] + f"{rng.randrange(10_000):04d}"
    return f"+{example.country_code}{varied}"


async def _write_chunk(connection: AsyncConnection, chunk: Chunk) -> None:
    """One bulk write per table, parents first (the tables' dependency order)."""
    order = [t for t in Client.metadata.sorted_tables if t in chunk.rows]
    if connection.dialect.name == "postgresql":
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        for table in order:
            columns = list(chunk.rows[table][0])
            records = [
                tuple(_copy_value(table, c, row[c]) for c in columns) for row in chunk.rows[table]
            ]
            await raw.copy_records_to_table(table.name, records=records, columns=columns)
    else:
        for table in order:
            await connection.execute(insert(table), chunk.rows[table])


def _copy_value(table: Table, column: str, value: Any) -> Any:
    """A value as asyncpg's binary COPY wants it (JSON as text, enums as plain strings)."""
    if value is None:
        return None
    if isinstance(table.c[column].type, JSON):
        return json.dumps(value)
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    return value


async def _reset_sequences(connection: AsyncConnection) -> None:
    """After explicit ids, move PostgreSQL's sequences past them."""
    if connection.dialect.name != "postgresql":
        return
    for table in Client.metadata.sorted_tables:
        # (trusted_documents' ids are their hashes: no sequence)
        if "id" in table.c and table.c.id.primary_key and isinstance(table.c.id.type, Integer):
            await connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table.name}))"
                )
            )
