"""The migrations build exactly the schema the models describe, on both databases."""

import importlib.metadata

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.migrate import QUEUE_VERSION_TABLE, alembic_config, for_dialect, queue_migrations, upgrade
from db.models import Base
from db.session import create_engine

# SQLite cannot reflect expression indexes; ours are PostgreSQL-only (`ddl_if`) and left out
# of the comparison there, but Alembic warns before it asks whether to include them.
pytestmark = pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning"
)


def differences(connection: Connection) -> list[object]:
    options = {"compare_type": True, "include_object": for_dialect(connection.dialect.name)}
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(connection: AsyncConnection) -> None:
    # given the database migrated to head (conftest)
    # when autogenerate compares it with the models
    found = await connection.run_sync(differences)
    # then it finds nothing to change
    assert found == []


async def test_database_is_at_the_newest_revision(connection: AsyncConnection) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = await connection.run_sync(
        lambda sync: MigrationContext.configure(sync).get_current_revision()
    )
    assert current == head


async def test_downgrade_to_base_and_upgrade_again(connection: AsyncConnection) -> None:
    # given a migrated database (DDL is transactional on both; the test rolls it all back)
    # when every migration is undone
    await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
    tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    # then only Alembic's bookkeeping is left (and, on PostgreSQL, the job queue's tables,
    # which follow procrastinate's version, not ours: db/migrate.py `queue_schema`)
    ours = {t for t in tables if not t.startswith("procrastinate_") and t != QUEUE_VERSION_TABLE}
    assert ours <= {"alembic_version"}
    # and migrating again restores the models' schema exactly
    await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
    assert await connection.run_sync(differences) == []


def test_the_queue_migrations_between_two_versions_in_order() -> None:
    found = queue_migrations("3.0.0", "3.4.0")
    names = [path.name for path in found]
    assert names == sorted(names)
    assert names  # procrastinate 3.x shipped migrations in that range
    assert all(
        (3, 0, 0) < tuple(int(p) for p in n.split("_")[0].split(".")) <= (3, 4, 0) for n in names
    )
    assert queue_migrations("3.10.0", "3.10.0") == []


async def test_the_queue_schema_is_the_installed_versions_and_applied_once(
    backend: str, scratch_url: str
) -> None:
    if backend != "postgresql":  # SQLite's queue is in memory: no schema
        engine = create_engine(scratch_url)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        await engine.dispose()
        assert not [t for t in tables if t.startswith("procrastinate") or t == QUEUE_VERSION_TABLE]
        return
    engine = create_engine(scratch_url)
    try:
        await upgrade(engine)  # a second time: nothing to do
        async with engine.connect() as connection:
            versions = list(
                await connection.scalars(text(f"SELECT version FROM {QUEUE_VERSION_TABLE}"))
            )
            jobs = await connection.scalar(text("SELECT count(*) FROM procrastinate_jobs"))
        assert versions == [importlib.metadata.version("procrastinate")]
        assert jobs == 0
    finally:
        await engine.dispose()
