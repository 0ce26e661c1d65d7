"""vuln_cpe_match.version_sort: where a vulnerable criterion's versions stop, as text the
database compares, and in the product index, so that matching seeks only the criteria an
asset's version can fall in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from inventory.vulns.index import version_sort

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000


def upgrade() -> None:
    column_type = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
    with op.batch_alter_table("vuln_cpe_match") as batch:
        batch.add_column(sa.Column("version_sort", column_type, nullable=True))
        batch.drop_index("ix_vuln_cpe_match_product")
    # Criteria imported before: worked out here (a row left None would only be read always).
    connection = op.get_bind()
    table = sa.table(
        "vuln_cpe_match",
        sa.column("id", sa.Integer),
        sa.column("criteria", sa.String),
        sa.column("vulnerable", sa.Boolean),
        sa.column("version_start", sa.String),
        sa.column("version_end", sa.String),
        sa.column("version_sort", sa.String),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c.criteria, table.c.version_start, table.c.version_end)
            .where(table.c.vulnerable.is_(True), table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        values = [
            {"row_id": row_id, "sort": text}
            for row_id, criteria, start, end in rows
            if (text := version_sort(criteria, start, end)) is not None
        ]
        if values:
            connection.execute(
                table.update()
                .where(table.c.id == sa.bindparam("row_id"))
                .values(version_sort=sa.bindparam("sort")),
                values,
            )
    # Built once filled (faster than keeping it up to date row by row).
    with op.batch_alter_table("vuln_cpe_match") as batch:
        batch.create_index(
            "ix_vuln_cpe_match_product", ["vendor", "product", "vulnerable", "version_sort"]
        )


def downgrade() -> None:
    with op.batch_alter_table("vuln_cpe_match") as batch:
        batch.drop_index("ix_vuln_cpe_match_product")
        batch.create_index("ix_vuln_cpe_match_product", ["vendor", "product", "vulnerable"])
        batch.drop_column("version_sort")
