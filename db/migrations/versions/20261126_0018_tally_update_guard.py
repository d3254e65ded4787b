"""The tallies' UPDATE triggers on PostgreSQL return at once when no updated client changed
what they count: most updates of `clients` (every ledger entry's balance, a name, the last
activity) change none of status, manager, country, currency, parent or connection types, and
the pair tallies' statement (40 SELECTs over the transition tables) then cost about half a
millisecond a write for nothing. SQLite's triggers already fire only on updates of those
columns (`AFTER UPDATE OF`).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("client_tallies_update", "client_pair_tallies_update")
COUNTED = "status, manager_id, country, currency, parent_id, connection_types"
GUARD = f"""
  -- nothing the tallies count changed (a balance, a name): nothing to do (migration 0018)
  IF NOT EXISTS (
    SELECT 1 FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
    WHERE ({", ".join(f"o.{c.strip()}" for c in COUNTED.split(","))})
      IS DISTINCT FROM ({", ".join(f"n.{c.strip()}" for c in COUNTED.split(","))})
  ) THEN
    RETURN NULL;
  END IF;"""


def _rewrite(add: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in FUNCTIONS:
        found = op.get_bind().execute(
            sa.text("SELECT prosrc FROM pg_proc WHERE oid = CAST(:name AS regproc)"),
            {"name": name},
        )
        source = found.scalar_one()
        if add:
            assert GUARD not in source, name
            assert "BEGIN" in source, name
            source = source.replace("BEGIN", "BEGIN" + GUARD, 1)
        else:
            source = source.replace(GUARD, "", 1)
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
            f"AS $function${source}$function$"
        )


def upgrade() -> None:
    _rewrite(add=True)


def downgrade() -> None:
    _rewrite(add=False)
