"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 11:54:13.923659
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import inventory.models.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "asset",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("zone", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("criticality", sa.String(length=16), nullable=False),
        sa.Column("holds_patient_data", sa.Boolean(), nullable=False),
        sa.Column("exposure", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("audit_interval", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("hostnames", sa.JSON(), nullable=False),
        sa.Column("expected_services", sa.JSON(), nullable=False),
        sa.Column("ae_titles", sa.JSON(), nullable=False),
        sa.Column("software", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.create_index("ix_asset_site", ["site", "archived_at"], unique=False)
        batch_op.create_index("ix_asset_zone", ["zone", "archived_at"], unique=False)
        batch_op.create_index(
            "uq_asset_live_name",
            ["name_key"],
            unique=True,
            sqlite_where=sa.text("archived_at IS NULL"),
            postgresql_where=sa.text("archived_at IS NULL"),
        )

    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_failure_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failure_client"), ["client"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failure_username"), ["username"], unique=False)

    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_login_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("session_token", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "asset_address",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("address", inventory.models.types.IPAddressType(length=45), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("asset_address", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_address_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_asset_address_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "asset_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("asset_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_change_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "asset_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("asset_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_tag_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_asset_tag_tag"), ["tag"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("asset_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_tag_tag"))
        batch_op.drop_index(batch_op.f("ix_asset_tag_asset_id"))

    op.drop_table("asset_tag")
    with op.batch_alter_table("asset_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_change_asset_id"))

    op.drop_table("asset_change")
    with op.batch_alter_table("asset_address", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_address_asset_id"))
        batch_op.drop_index(batch_op.f("ix_asset_address_address"))

    op.drop_table("asset_address")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_user_id"))

    op.drop_table("api_token")
    op.drop_table("user_account")
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failure_username"))
        batch_op.drop_index(batch_op.f("ix_login_failure_client"))
        batch_op.drop_index(batch_op.f("ix_login_failure_at"))

    op.drop_table("login_failure")
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_asset_live_name",
            sqlite_where=sa.text("archived_at IS NULL"),
            postgresql_where=sa.text("archived_at IS NULL"),
        )
        batch_op.drop_index("ix_asset_zone")
        batch_op.drop_index("ix_asset_site")

    op.drop_table("asset")
