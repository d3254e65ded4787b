"""Alembic environment: runs on an engine's connection handed over by db.migrate."""

import asyncio

from alembic import context
from sqlalchemy import Connection

from db import models  # noqa: F401 - registers every table on the metadata
from db.base import Base
from db.migrate import for_dialect

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=for_dialect(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url() -> None:
    from clientdesk.settings import get_settings
    from db.session import create_engine

    engine = create_engine(
        context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    )
    async with engine.begin() as connection:
        await connection.run_sync(run_on)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:  # `alembic upgrade head` from a shell, with alembic.ini
    asyncio.run(run_from_url())
