"""A pooled connection that the server closed is replaced, not handed to a request."""

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from clientdesk.settings import Settings
from db.enums import StaffRole, TokenKind
from db.models import StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from services.auth import issue_token
from tests.conftest import POSTGRES_URL, FakeClock, ScratchDatabases, backends_until

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_DATABASE_URL)")
QUERY = "{ viewer { email } clients(first: 1) { nodes { login } } }"


async def test_requests_survive_the_server_closing_pooled_connections(tmp_path: Path) -> None:
    scratch = ScratchDatabases("postgresql", tmp_path)
    url = await scratch.create()
    engine = create_engine(url)
    try:
        clock = FakeClock(datetime(2026, 6, 1, tzinfo=UTC))
        async with create_sessionmaker(engine)() as session:
            staff = StaffUser(email="ops@clientdesk.test", name="Ops", role=StaffRole.ADMIN)
            session.add(staff)
            await session.flush()
            token = (
                await issue_token(session, staff=staff, kind=TokenKind.API, name="t", now=clock())
            ).token
            await session.commit()
        settings = Settings(database_url=url, log_format="console", rate_limit_points_per_minute=0)
        app = create_app(settings, engine=engine, clock=clock)
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as http:
            # given a pool with connections in it
            first = await http.post("/graphql", json={"query": QUERY}, headers=headers)
            assert first.json()["data"]["viewer"]["email"] == "ops@clientdesk.test"
            # when the server ends every one of them (a restart, a failover)
            admin = create_engine(url)
            async with admin.connect() as connection:
                ended = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
                # pg_terminate_backend only signals: wait until the backends have exited, as
                # after a restart (a request racing a backend's exit may fail; it is not retried)
                left = await backends_until(connection, "true", lambda count: count == 0)
            await admin.dispose()
            assert ended >= 1
            assert left == 0
            # then the next requests get fresh connections and succeed
            for _ in range(3):
                again = await http.post("/graphql", json={"query": QUERY}, headers=headers)
                assert again.status_code == 200
                assert "errors" not in again.json(), again.json()
    finally:
        await engine.dispose()
        await scratch.drop_all()
