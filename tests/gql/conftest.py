"""A read-only, seeded database per backend for the list tests: demo data, an app, tokens."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from clientdesk.demo import DEMO_ADMIN_EMAIL, DEMO_MANAGER_EMAIL, seed_demo_data
from clientdesk.settings import Settings
from db import direct
from db.enums import ConnectionStatus, ConnectionType, EntryKind, TokenKind
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
    StaffUser,
    client_categories,
    client_departments,
)
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from services.auth import issue_token
from tests.api import GraphQLClient
from tests.conftest import FakeClock, create_scratch_database, drop_scratch_databases

SEEDED_AT = datetime(2026, 6, 1, tzinfo=UTC)
SEEDED_CLIENTS = 240
RICH_LOGIN = "acme.marketing"  # given one of every relation, for the statement-count test


async def enrich_one_client(session: AsyncSession, *, login: str, staff_id: int) -> None:
    """Give a sub-account a block, connections, custom values, departments, categories, and a
    ledger with a credit note (package lines), a payment and that payment's reversal."""
    client = (await session.execute(select(Client).where(Client.login == login))).scalar_one()
    client.block_reason, client.blocked_at, client.blocked_by_id = "Audit", SEEDED_AT, staff_id
    await session.execute(delete(ClientConnection).where(ClientConnection.client_id == client.id))
    await session.execute(delete(CustomFieldValue).where(CustomFieldValue.client_id == client.id))
    for table in (client_departments, client_categories):
        await session.execute(delete(table).where(table.c.client_id == client.id))
    session.add(
        ClientConnection(
            client_id=client.id,
            type=ConnectionType.SMPP,
            status=ConnectionStatus.ONLINE,
            last_seen_at=SEEDED_AT,
        )
    )
    definition = (await session.execute(select(CustomFieldDefinition))).scalars().first()
    assert definition is not None
    session.add(CustomFieldValue(client_id=client.id, definition_id=definition.id, value="x"))
    department = (await session.execute(select(Department))).scalars().first()
    category = (await session.execute(select(Category))).scalars().first()
    assert department is not None
    assert category is not None
    await session.execute(
        insert(client_departments).values(client_id=client.id, department_id=department.id)
    )
    await session.execute(
        insert(client_categories).values(client_id=client.id, category_id=category.id)
    )
    package = (await session.execute(select(Package))).scalars().first()
    assert package is not None
    balance = client.balance
    client.credit_limit = max(client.credit_limit, Decimal(100))  # room for the credit note
    payment = CreditEntry(
        client_id=client.id,
        kind=EntryKind.PAYMENT,
        amount=Decimal(50),
        currency=client.currency,
        balance_after=balance + 50,
        created_by_id=staff_id,
        created_at=SEEDED_AT,
    )
    session.add(payment)
    await session.flush()
    reversal = CreditEntry(
        client_id=client.id,
        kind=EntryKind.REVERSAL,
        amount=Decimal(-50),
        currency=client.currency,
        balance_after=balance,
        reverses_id=payment.id,
        created_by_id=staff_id,
        created_at=SEEDED_AT,
    )
    note = CreditEntry(
        client_id=client.id,
        kind=EntryKind.CREDIT_NOTE,
        amount=Decimal(-5),
        currency=client.currency,
        balance_after=balance - 5,
        created_by_id=staff_id,
        created_at=SEEDED_AT,
    )
    session.add_all([reversal, note])
    await session.flush()
    session.add(
        CreditNoteLine(
            entry_id=note.id,
            position=0,
            description="Taken back",
            package_id=package.id,
            quantity=1,
            unit_amount=Decimal(-5),
            amount=Decimal(-5),
        )
    )
    balance -= 5
    client.balance = balance


@dataclass(repr=False)  # hypothesis prints fixtures of a failing example: keep it short
class Listing:
    """The seeded database: its engine, every client row, tokens, and an API client."""

    engine: AsyncEngine
    clients: list[dict[str, Any]]
    connections: list[dict[str, Any]]
    custom_values: dict[tuple[int, str], Any]  # (client id, field key) -> value
    staff: list[dict[str, Any]]
    manager_id: int
    admin_token: str
    manager_token: str
    api: GraphQLClient
    statements: list[tuple[str, Any]]


@pytest.fixture(scope="session")
async def listing(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Listing]:
    url = await create_scratch_database(backend, tmp_path_factory.mktemp("listing"))
    engine = create_engine(url)
    await seed_demo_data(engine, clients=SEEDED_CLIENTS, seed=3, now=SEEDED_AT)
    async with create_sessionmaker(engine)() as session:
        staff = {
            row.email: row
            for row in (await session.execute(select(StaffUser))).scalars()
            if row.email in (DEMO_ADMIN_EMAIL, DEMO_MANAGER_EMAIL)
        }
        tokens = {
            email: (
                await issue_token(
                    session, staff=user, kind=TokenKind.API, name="tests", now=SEEDED_AT
                )
            ).token
            for email, user in staff.items()
        }
        await enrich_one_client(session, login=RICH_LOGIN, staff_id=staff[DEMO_ADMIN_EMAIL].id)
        await session.commit()
    async with engine.connect() as connection:
        clients = [dict(r._mapping) for r in await connection.execute(select(Client.__table__))]
        staff_rows = [
            dict(r._mapping) for r in await connection.execute(select(StaffUser.id, StaffUser.name))
        ]
        names = {s["id"]: s["name"] for s in staff_rows}
        for client in clients:  # the manager's name as the staff table has it, for MANAGER
            client["manager"] = names.get(client["manager_id"])
        connections = [
            dict(r._mapping) for r in await connection.execute(select(ClientConnection.__table__))
        ]
        custom_values = {
            (client_id, key): value
            for client_id, key, value in await connection.execute(
                select(
                    CustomFieldValue.client_id, CustomFieldDefinition.key, CustomFieldValue.value
                ).join(CustomFieldDefinition)
            )
        }
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    def _record_direct(connection: Any, statement: str, parameters: Any) -> None:
        if connection.engine.sync_engine is engine.sync_engine:
            statements.append((statement, parameters))

    direct.observers.append(_record_direct)

    app = create_app(
        Settings(database_url=url, log_format="console", rate_limit_points_per_minute=0),
        engine=engine,
        clock=FakeClock(SEEDED_AT),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://listing.test") as http:
        api = GraphQLClient(http)
        api.token = tokens[DEMO_MANAGER_EMAIL]  # managers see every client, and own some
        yield Listing(
            engine=engine,
            clients=clients,
            connections=connections,
            custom_values=custom_values,
            staff=staff_rows,
            manager_id=staff[DEMO_MANAGER_EMAIL].id,
            admin_token=tokens[DEMO_ADMIN_EMAIL],
            manager_token=tokens[DEMO_MANAGER_EMAIL],
            api=api,
            statements=statements,
        )
    direct.observers.remove(_record_direct)
    await engine.dispose()
    await drop_scratch_databases([url])
