"""vulnerabilities: NVD records and their CPE criteria, KEV catalog, feed imports, detected software

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import inventory.models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("started_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("feed_date", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("feed_version", sa.String(length=32), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "kev_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cve_id", sa.String(length=32), nullable=False),
        sa.Column("vendor_project", sa.String(length=200), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("date_added", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("ransomware", sa.String(length=16), nullable=False),
        sa.Column("required_action", sa.Text(), nullable=False),
        sa.Column("short_description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kev_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kev_entry_cve_id"), ["cve_id"], unique=True)

    op.create_table(
        "vuln_product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(length=1), nullable=False),
        sa.Column("vendor", sa.String(length=128), nullable=False),
        sa.Column("product", sa.String(length=128), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("part", "vendor", "product", name="uq_vuln_product"),
    )
    with op.batch_alter_table("vuln_product", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vuln_product_product"), ["product"], unique=False)
        batch_op.create_index(batch_op.f("ix_vuln_product_vendor"), ["vendor"], unique=False)

    op.create_table(
        "vulnerability",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cve_id", sa.String(length=32), nullable=False),
        sa.Column("published", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_modified", inventory.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("cvss_version", sa.String(length=8), nullable=False),
        sa.Column("cvss_score", sa.Float(), nullable=True),
        sa.Column("cvss_vector", sa.String(length=200), nullable=False),
        sa.Column("cvss_severity", sa.String(length=16), nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("configurations", sa.JSON(), nullable=False),
        sa.Column("cisa_exploit_add", sa.Date(), nullable=True),
        sa.Column("needs_full_check", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("vulnerability", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vulnerability_cve_id"), ["cve_id"], unique=True)

    op.create_table(
        "software_candidate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("cpe", sa.String(length=512), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("seen", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", inventory.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_seen", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", inventory.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("asset_id", "cpe", name="uq_software_candidate"),
    )
    with op.batch_alter_table("software_candidate", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_software_candidate_asset_id"), ["asset_id"], unique=False
        )

    op.create_table(
        "vuln_cpe_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vulnerability_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(length=1), nullable=False),
        sa.Column("vendor", sa.String(length=128), nullable=False),
        sa.Column("product", sa.String(length=128), nullable=False),
        sa.Column("criteria", sa.String(length=512), nullable=False),
        sa.Column("vulnerable", sa.Boolean(), nullable=False),
        sa.Column("version_start", sa.String(length=64), nullable=True),
        sa.Column("start_including", sa.Boolean(), nullable=False),
        sa.Column("version_end", sa.String(length=64), nullable=True),
        sa.Column("end_including", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["vulnerability_id"], ["vulnerability.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("vuln_cpe_match", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vuln_cpe_match_product", ["vendor", "product", "vulnerable"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_vuln_cpe_match_vulnerability_id"), ["vulnerability_id"], unique=False
        )


    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index("ix_finding_check_subject", ["check_id", "subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_check_subject")

    with op.batch_alter_table("vuln_cpe_match", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vuln_cpe_match_vulnerability_id"))
        batch_op.drop_index("ix_vuln_cpe_match_product")

    op.drop_table("vuln_cpe_match")
    with op.batch_alter_table("software_candidate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_software_candidate_asset_id"))

    op.drop_table("software_candidate")
    with op.batch_alter_table("vulnerability", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vulnerability_cve_id"))

    op.drop_table("vulnerability")
    with op.batch_alter_table("vuln_product", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vuln_product_vendor"))
        batch_op.drop_index(batch_op.f("ix_vuln_product_product"))

    op.drop_table("vuln_product")
    with op.batch_alter_table("kev_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kev_entry_cve_id"))

    op.drop_table("kev_entry")
    op.drop_table("feed_import")
