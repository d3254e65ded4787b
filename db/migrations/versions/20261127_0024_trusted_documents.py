"""Trusted documents: the registered GraphQL documents callers may send by id
(`{"documentId": "sha256:…"}`), and API tokens that may send nothing else.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("id", sa.String(71), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("operation_names", sa.String(1000), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column(
            "added_at", UTCDateTime, server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "trusted_documents_only",
                sa.Boolean(),
                server_default=sa.text("false"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("trusted_documents_only")
    op.drop_table("trusted_documents")
