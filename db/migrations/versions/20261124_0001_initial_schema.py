"""Initial schema: every table of SPEC §2.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 05:51:16.622648
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.base import Amount, BigId, ExactDecimal, Json, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("name", name=op.f("uq_categories_name")),
    )
    op.create_table(
        "custom_field_definitions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "TEXT",
                "NUMBER",
                "BOOLEAN",
                "DATE",
                "SELECT",
                name="type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "options",
            Json,
            nullable=True,
        ),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_field_definitions")),
        sa.UniqueConstraint("key", name=op.f("uq_custom_field_definitions_key")),
    )
    op.create_table(
        "departments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("name", name=op.f("uq_departments_name")),
    )
    op.create_table(
        "packages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packages")),
        sa.UniqueConstraint("name", name=op.f("uq_packages_name")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum("ADMIN", "MANAGER", name="role", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_staff_users_email_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("staff_id", BigId, nullable=False),
        sa.Column(
            "kind",
            sa.Enum("API", "SESSION", name="kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "scopes",
            Json,
            nullable=False,
        ),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_api_tokens_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, nullable=False),
        sa.Column(
            "occurred_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("actor_id", BigId, nullable=True),
        sa.Column("actor_email", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", BigId, nullable=True),
        sa.Column("target_label", sa.String(length=200), nullable=True),
        sa.Column(
            "before",
            Json,
            nullable=True,
        ),
        sa.Column(
            "after",
            Json,
            nullable=True,
        ),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["staff_users.id"],
            name=op.f("fk_audit_log_actor_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action_id"), ["action", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_log_actor_id_id"), ["actor_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_log_occurred_at_id"), ["occurred_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_log_target_type_target_id_id"),
            ["target_type", "target_id", "id"],
            unique=False,
        )

    op.create_table(
        "clients",
        sa.Column("id", BigId, nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column(
            "status",
            sa.Enum("ACTIVE", "INACTIVE", name="status", native_enum=False, create_constraint=True),
            server_default="ACTIVE",
            nullable=False,
        ),
        sa.Column("block_reason", sa.String(length=500), nullable=True),
        sa.Column("blocked_at", UTCDateTime(), nullable=True),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.Column("blocked_by_id", BigId, nullable=True),
        sa.Column("manager_id", BigId, nullable=True),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("balance", Amount(), server_default=sa.text("0"), nullable=False),
        sa.Column("credit_limit", Amount(), server_default=sa.text("0"), nullable=False),
        sa.Column("valid_till", UTCDateTime(), nullable=True),
        sa.Column("moderation", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("avatar_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "price_adjustment_percent",
            ExactDecimal(7, 2),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("last_activity_at", UTCDateTime(), nullable=True),
        sa.Column("chats_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "support_requests_count", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(blocked_at IS NULL AND block_reason IS NULL AND blocked_until IS NULL)"
            " OR (blocked_at IS NOT NULL AND block_reason IS NOT NULL)",
            name=op.f("ck_clients_block_complete"),
        ),
        sa.CheckConstraint(
            "balance + credit_limit >= 0", name=op.f("ck_clients_balance_within_credit_limit")
        ),
        sa.CheckConstraint(
            "chats_count >= 0 AND support_requests_count >= 0", name=op.f("ck_clients_counts")
        ),
        sa.CheckConstraint("credit_limit >= 0", name=op.f("ck_clients_credit_limit_not_negative")),
        sa.CheckConstraint(
            "email IS NOT NULL OR phone IS NOT NULL", name=op.f("ck_clients_has_contact")
        ),
        sa.CheckConstraint(
            "length(country) = 2 AND country = upper(country)", name=op.f("ck_clients_country_code")
        ),
        sa.CheckConstraint(
            "length(currency) = 3 AND currency = upper(currency)", name=op.f("ck_clients_currency")
        ),
        sa.CheckConstraint("length(login) BETWEEN 3 AND 64", name=op.f("ck_clients_login_length")),
        sa.CheckConstraint("login = lower(login)", name=op.f("ck_clients_login_lowercase")),
        sa.CheckConstraint("parent_id <> id", name=op.f("ck_clients_not_own_parent")),
        sa.CheckConstraint(
            "price_adjustment_percent > -100 AND price_adjustment_percent <= 1000",
            name=op.f("ck_clients_price_adjustment_range"),
        ).ddl_if(dialect="postgresql"),
        sa.CheckConstraint(
            "price_adjustment_percent > -10000 AND price_adjustment_percent <= 100000",
            name=op.f("ck_clients_price_adjustment_range_sqlite"),
        ).ddl_if(dialect="sqlite"),
        sa.ForeignKeyConstraint(
            ["blocked_by_id"],
            ["staff_users.id"],
            name=op.f("fk_clients_blocked_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["staff_users.id"],
            name=op.f("fk_clients_manager_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["clients.id"],
            name=op.f("fk_clients_parent_id_clients"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clients_balance_id"), ["balance", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clients_country_id"), ["country", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clients_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_clients_currency_id"), ["currency", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clients_email_id"), ["email", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clients_last_activity_at_id"), ["last_activity_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clients_login"), ["login"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_clients_manager_id_id"), ["manager_id", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clients_name_id"), ["name", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clients_parent_id_id"), ["parent_id", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clients_status_id"), ["status", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clients_valid_till_id"), ["valid_till", "id"], unique=False
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("staff_id", BigId, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "response",
            Json,
            nullable=True,
        ),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_idempotency_keys_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("staff_id", "key", name=op.f("uq_idempotency_keys_staff_id_key")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "package_prices",
        sa.Column("package_id", BigId, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", Amount(), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_package_prices_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_package_prices_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_id", "currency", name=op.f("pk_package_prices")),
    )
    op.create_table(
        "client_categories",
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("category_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_client_categories_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_categories_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "category_id", name=op.f("pk_client_categories")),
    )
    op.create_table(
        "client_connections",
        sa.Column("id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "SMPP",
                "HTTP",
                "SMTP",
                "WEB",
                name="type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("ONLINE", "OFFLINE", name="status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_connections_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_connections")),
        sa.UniqueConstraint("client_id", "type", name=op.f("uq_client_connections_client_id_type")),
    )
    with op.batch_alter_table("client_connections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_connections_type_status_client_id"),
            ["type", "status", "client_id"],
            unique=False,
        )

    op.create_table(
        "client_custom_field_values",
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("definition_id", BigId, nullable=False),
        sa.Column(
            "value",
            Json,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_custom_field_values_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["custom_field_definitions.id"],
            name=op.f("fk_client_custom_field_values_definition_id_custom_field_definitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "client_id", "definition_id", name=op.f("pk_client_custom_field_values")
        ),
    )
    op.create_table(
        "client_departments",
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("department_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_departments_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_client_departments_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "department_id", name=op.f("pk_client_departments")),
    )
    op.create_table(
        "credit_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "PAYMENT",
                "CREDIT_NOTE",
                "DEDUCTION",
                "REVERSAL",
                name="kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("amount", Amount(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_after", Amount(), nullable=False),
        sa.Column("payment_method", sa.String(length=50), nullable=True),
        sa.Column("payment_reference", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.String(length=1000), nullable=True),
        sa.Column("reverses_id", BigId, nullable=True),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'REVERSAL') = (reverses_id IS NOT NULL)",
            name=op.f("ck_credit_entries_reversal_link"),
        ),
        sa.CheckConstraint(
            "amount <> 0 OR kind = 'CREDIT_NOTE'", name=op.f("ck_credit_entries_amount_not_zero")
        ),
        sa.CheckConstraint(
            "kind <> 'DEDUCTION' OR amount < 0", name=op.f("ck_credit_entries_deduction_negative")
        ),
        sa.CheckConstraint(
            "kind <> 'PAYMENT' OR amount > 0", name=op.f("ck_credit_entries_payment_positive")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_credit_entries_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["staff_users.id"],
            name=op.f("fk_credit_entries_created_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["credit_entries.id"],
            name=op.f("fk_credit_entries_reverses_id_credit_entries"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entries")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_credit_entries_reverses_id")),
    )
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_entries_client_id_id"), ["client_id", "id"], unique=False
        )

    op.create_table(
        "mail_outbox",
        sa.Column("id", BigId, nullable=False),
        sa.Column("client_id", BigId, nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "SENT",
                "FAILED",
                name="status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="PENDING",
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column(
            "created_at",
            UTCDateTime(),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_mail_outbox_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mail_outbox_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "credit_note_lines",
        sa.Column("id", BigId, nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("package_id", BigId, nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", Amount(), nullable=False),
        sa.Column("amount", Amount(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_credit_note_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["credit_entries.id"],
            name=op.f("fk_credit_note_lines_entry_id_credit_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_credit_note_lines_package_id_packages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_note_lines")),
        sa.UniqueConstraint(
            "entry_id", "position", name=op.f("uq_credit_note_lines_entry_id_position")
        ),
    )


def downgrade() -> None:
    op.drop_table("credit_note_lines")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_status_next_attempt_at"))

    op.drop_table("mail_outbox")
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_entries_client_id_id"))

    op.drop_table("credit_entries")
    op.drop_table("client_departments")
    op.drop_table("client_custom_field_values")
    with op.batch_alter_table("client_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_connections_type_status_client_id"))

    op.drop_table("client_connections")
    op.drop_table("client_categories")
    op.drop_table("package_prices")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_valid_till_id"))
        batch_op.drop_index(batch_op.f("ix_clients_status_id"))
        batch_op.drop_index(batch_op.f("ix_clients_parent_id_id"))
        batch_op.drop_index(batch_op.f("ix_clients_name_id"))
        batch_op.drop_index(batch_op.f("ix_clients_manager_id_id"))
        batch_op.drop_index(batch_op.f("ix_clients_login"))
        batch_op.drop_index(batch_op.f("ix_clients_last_activity_at_id"))
        batch_op.drop_index(batch_op.f("ix_clients_email_id"))
        batch_op.drop_index(batch_op.f("ix_clients_currency_id"))
        batch_op.drop_index(batch_op.f("ix_clients_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_clients_country_id"))
        batch_op.drop_index(batch_op.f("ix_clients_balance_id"))

    op.drop_table("clients")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_target_type_target_id_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_occurred_at_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_actor_id_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action_id"))

    op.drop_table("audit_log")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_staff_id"))

    op.drop_table("api_tokens")
    op.drop_table("staff_users")
    op.drop_table("packages")
    op.drop_table("departments")
    op.drop_table("custom_field_definitions")
    op.drop_table("categories")
