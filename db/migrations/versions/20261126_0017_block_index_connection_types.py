"""The index on the block's end holds the connection types too, so that the filter panel's
counts among the blocked clients read the index alone when the filter names a connection
type (gql/clients/facets.py).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK_INDEX = "ix_clients_block_ends_at_id"
COLUMNS = ["block_ends_at", "id", "status", "country", "currency", "manager_id", "parent_id"]


def upgrade() -> None:
    op.drop_index(BLOCK_INDEX, table_name="clients")
    op.create_index(BLOCK_INDEX, "clients", [*COLUMNS, "connection_types"])


def downgrade() -> None:
    op.drop_index(BLOCK_INDEX, table_name="clients")
    op.create_index(BLOCK_INDEX, "clients", COLUMNS)
