"""The migrations build exactly the schema the models describe, on both databases."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncConnection

from db.migrate import alembic_config, for_dialect
from db.models import Base

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
    # then only Alembic's bookkeeping is left
    assert set(tables) <= {"alembic_version"}
    # and migrating again restores the models' schema exactly
    await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
    assert await connection.run_sync(differences) == []
