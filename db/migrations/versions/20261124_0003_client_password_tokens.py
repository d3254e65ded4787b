"""One-time set-password links for clients; ledger reversals deletable with their client.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:28:13.043048
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.base import BigId, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_password_tokens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_password_tokens_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_password_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_client_password_tokens_token_hash")),
    )
    with op.batch_alter_table("client_password_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_password_tokens_client_id"), ["client_id"], unique=False
        )

    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_credit_entries_reverses_id_credit_entries"), type_="foreignkey"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_credit_entries_reverses_id_credit_entries"),
            "credit_entries",
            ["reverses_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_credit_entries_reverses_id_credit_entries"), type_="foreignkey"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_credit_entries_reverses_id_credit_entries"),
            "credit_entries",
            ["reverses_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("client_password_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_password_tokens_client_id"))

    op.drop_table("client_password_tokens")
