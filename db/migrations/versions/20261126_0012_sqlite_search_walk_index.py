"""SQLite: the list's default order with the search text, for a common `search`.

A common text matches thousands of clients; looking them all up through the FTS index and
sorting them cost 8 ms a page at 100,000 clients. Walking (created_at, id) newest first and
checking the text finds a page within a few thousand rows; with the search text in the index,
without reading the table (db/search.py). PostgreSQL chooses between its trigram index and
its ordered index by itself: nothing to do there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 04:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_clients_created_at_id_search_text"


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.create_index(NAME, "clients", ["created_at", "id", "search_text"])


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.drop_index(NAME, table_name="clients")
