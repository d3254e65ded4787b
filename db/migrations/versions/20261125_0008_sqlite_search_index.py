"""SQLite: an FTS5 trigram index of the clients' search text, kept by triggers.

SQLite cannot index a column for substring search, so `search` read every client (200 ms at
100,000). FTS5's trigram tokenizer answers LIKE '%text%' from an index (db/search.py).
PostgreSQL has its trigram index on clients.search_text (0007): nothing to do there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEPARATOR = "\x1f"  # as db.models.SEARCH_SEPARATOR
TEXT = (
    f"{{row}}.login || '{SEPARATOR}' || coalesce({{row}}.name, '') || '{SEPARATOR}' "
    "|| coalesce({row}.email, '')"
)


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.execute("CREATE VIRTUAL TABLE client_search USING fts5(text, tokenize = 'trigram')")
    op.execute(
        "INSERT INTO client_search (rowid, text) SELECT id, "
        + TEXT.format(row="clients")
        + " FROM clients"
    )
    new = TEXT.format(row="NEW")
    op.execute(
        "CREATE TRIGGER client_search_insert AFTER INSERT ON clients BEGIN "
        f"INSERT INTO client_search (rowid, text) VALUES (NEW.id, {new}); END"
    )
    op.execute(
        "CREATE TRIGGER client_search_update AFTER UPDATE OF login, name, email ON clients BEGIN "
        f"UPDATE client_search SET text = {new} WHERE rowid = OLD.id; END"
    )
    op.execute(
        "CREATE TRIGGER client_search_delete AFTER DELETE ON clients BEGIN "
        "DELETE FROM client_search WHERE rowid = OLD.id; END"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER client_search_{event}")
    op.execute("DROP TABLE client_search")
