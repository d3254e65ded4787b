"""Outbox messages say what they are (`kind`), so a client's page can show whether its login
e-mail went out: the login e-mails sent so far are marked by their subject.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_mail_outbox_client_id_kind_id"


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox") as batch:
        batch.add_column(sa.Column("kind", sa.String(40), nullable=True))
    op.execute(
        "UPDATE mail_outbox SET kind = 'login_details' "
        "WHERE subject = 'Your new account' AND client_id IS NOT NULL"
    )
    op.create_index(INDEX, "mail_outbox", ["client_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="mail_outbox")
    with op.batch_alter_table("mail_outbox") as batch:
        batch.drop_column("kind")
