"""Cabinet sessions: an "In cabinet" token names a row here, checked again on every use.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-26 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.base import BigId, UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cabinet_sessions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("issued_by_id", BigId, nullable=False),
        sa.Column("api_token_id", BigId, nullable=False),
        sa.Column("forced", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at", UTCDateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by_id", BigId, nullable=True),
        sa.Column("revoked_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_cabinet_sessions_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_id"],
            ["staff_users.id"],
            name=op.f("fk_cabinet_sessions_issued_by_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["api_token_id"],
            ["api_tokens.id"],
            name=op.f("fk_cabinet_sessions_api_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"],
            ["staff_users.id"],
            name=op.f("fk_cabinet_sessions_revoked_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cabinet_sessions")),
    )
    with op.batch_alter_table("cabinet_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cabinet_sessions_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cabinet_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cabinet_sessions_client_id"))
    op.drop_table("cabinet_sessions")
