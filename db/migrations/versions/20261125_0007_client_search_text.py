"""The clients' search text: login, name and e-mail lower-cased once, for `search`.

Three ILIKEs per row read cost four times one LIKE on text lower-cased at write time; one
trigram index on it replaces the name's (name is searched only through `search`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEPARATOR = "\x1f"  # as db.models.SEARCH_SEPARATOR: no search contains it
SEARCH_TEXT = (
    f"lower(login || '{SEPARATOR}' || coalesce(name, '') || '{SEPARATOR}' || coalesce(email, ''))"
)


def upgrade() -> None:
    # Stored on PostgreSQL, for its index; computed when read on SQLite, which cannot add a
    # stored column to a table and has no index to keep.
    postgresql = op.get_context().dialect.name == "postgresql"
    computed = sa.Computed(SEARCH_TEXT, persisted=True if postgresql else None)
    op.add_column("clients", sa.Column("search_text", sa.Text(), computed))
    if postgresql:
        op.execute("DROP INDEX ix_clients_name_trgm")
        op.execute(
            "CREATE INDEX ix_clients_search_text_trgm ON clients "
            "USING gin (search_text gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_clients_search_text_trgm")
        op.execute("CREATE INDEX ix_clients_name_trgm ON clients USING gin (name gin_trgm_ops)")
    # not a batch operation: on SQLite that copies the table and loses its triggers (0006)
    op.execute("ALTER TABLE clients DROP COLUMN search_text")
