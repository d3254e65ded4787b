"""Run the Alembic migrations from code (the CLI and the tests use this, not alembic.ini)."""

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def for_dialect(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object hook: leave out what the models create only on other
    databases (`.ddl_if(dialect=…)`), so autogenerate does not ask for it here."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and name is not None and name.startswith("client_search"):
            return False  # SQLite's full-text index and its shadow tables (migration 0008)
        if (
            type_ == "table"
            and name is not None
            and (name.startswith("procrastinate_") or name == QUEUE_VERSION_TABLE)
        ):
            return False  # the job queue's tables: its own schema (`queue_schema`)
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database of `engine` up to `revision` (at head on PostgreSQL, the job
    queue's schema too: `queue_schema`)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
    if engine.dialect.name == "postgresql" and revision == "head":
        await queue_schema(engine)
        await keep_change_positions(engine)


async def keep_change_positions(engine: AsyncEngine) -> None:
    """Raise `client_change_base` so that every change from now on is positioned after every
    change recorded (PostgreSQL): a database restored into another cluster (pg_dump) finds
    transaction ids lower than the positions it holds, and the sync feed would put new changes
    behind the cursors partners stored. A no-op anywhere else."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE client_change_base SET base = greatest(base, "
                "(SELECT coalesce(max(position), 0) + 1 FROM client_changes) "
                "- pg_current_xact_id()::text::bigint)"
            )
        )


# The job queue's tables and functions are procrastinate's (services/jobs.py): its schema as
# the installed version ships it, the first time; later, its migrations between the version
# whose schema is in place (kept here) and the one installed, in order, each in its own
# transaction, as procrastinate's upgrade notes ask.
QUEUE_VERSION_TABLE = "queue_schema_version"
QUEUE_LOCK = 0x636C6471  # an advisory lock: two processes migrating at once take turns


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def queue_migrations(applied: str, installed: str) -> list[Path]:
    """procrastinate's migration files after version `applied`, up to `installed`."""
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    low, high = _version(applied), _version(installed)
    return [
        path
        for path in sorted(folder.glob("*.sql"))
        if low < _version(path.name.split("_")[0]) <= high
    ]


async def _run_script(connection: AsyncConnection, script: str) -> None:
    """SQL of many statements (function bodies and all) as one simple query: a prepared
    statement cannot hold them."""
    raw = await connection.get_raw_connection()
    await raw.driver_connection.execute(script)  # type: ignore[union-attr]


async def queue_schema(engine: AsyncEngine) -> None:
    """Bring the job queue's schema to the installed procrastinate's (PostgreSQL)."""
    from procrastinate.schema import SchemaManager

    installed = importlib.metadata.version("procrastinate")
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUEUE_LOCK})
        await connection.execute(
            text(f"CREATE TABLE IF NOT EXISTS {QUEUE_VERSION_TABLE} (version text NOT NULL)")
        )
        applied = await connection.scalar(text(f"SELECT version FROM {QUEUE_VERSION_TABLE}"))
        if applied is None:
            if not await connection.scalar(text("SELECT to_regclass('procrastinate_jobs')")):
                await _run_script(connection, SchemaManager.get_schema())
            await connection.execute(
                text(f"INSERT INTO {QUEUE_VERSION_TABLE} VALUES (:version)"),
                {"version": installed},
            )
            return
    if _version(applied) >= _version(installed):
        return
    for path in queue_migrations(applied, installed):
        async with engine.begin() as connection:
            await _run_script(connection, path.read_text())
    async with engine.begin() as connection:
        await connection.execute(
            text(f"UPDATE {QUEUE_VERSION_TABLE} SET version = :version"), {"version": installed}
        )


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
