"""vuln_match_state: per asset, when it was last matched and a digest of what the match found

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import inventory.models.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vuln_match_state",
        sa.Column("asset_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(length=40), nullable=False),
        sa.Column("matched_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id"),
    )


def downgrade() -> None:
    op.drop_table("vuln_match_state")
