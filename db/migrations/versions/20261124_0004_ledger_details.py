"""Ledger details: payment methods as a closed list, the validTill a payment set, and credit
note lines with signed quantities.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METHODS = ("BANK_TRANSFER", "CARD", "PAYPAL", "CASH", "CHECK", "CRYPTO", "OTHER")


def upgrade() -> None:
    listed = ", ".join(f"'{method}'" for method in METHODS)
    op.execute(
        "UPDATE credit_entries SET payment_method = CASE"
        f" WHEN upper(payment_method) IN ({listed}) THEN upper(payment_method) ELSE 'OTHER' END"
        " WHERE payment_method IS NOT NULL"
    )
    with op.batch_alter_table("credit_entries") as batch_op:
        batch_op.alter_column(
            "payment_method",
            existing_type=sa.String(length=50),
            type_=sa.Enum(
                *METHODS, name="payment_method", native_enum=False, create_constraint=True
            ),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("valid_till_set", UTCDateTime(), nullable=True))
    with op.batch_alter_table("credit_note_lines") as batch_op:
        batch_op.drop_constraint(op.f("ck_credit_note_lines_quantity_positive"), type_="check")
        batch_op.create_check_constraint("quantity_not_zero", "quantity <> 0")


def downgrade() -> None:
    with op.batch_alter_table("credit_note_lines") as batch_op:
        batch_op.drop_constraint(op.f("ck_credit_note_lines_quantity_not_zero"), type_="check")
        batch_op.create_check_constraint("quantity_positive", "quantity > 0")
    with op.batch_alter_table("credit_entries") as batch_op:
        batch_op.drop_column("valid_till_set")
        batch_op.drop_constraint(op.f("ck_credit_entries_payment_method"), type_="check")
        batch_op.alter_column(
            "payment_method",
            existing_type=sa.Enum(*METHODS, name="payment_method", native_enum=False),
            type_=sa.String(length=50),
            existing_nullable=True,
        )
