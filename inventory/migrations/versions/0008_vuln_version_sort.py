"""vuln_cpe_match.version_sort: where a vulnerable criterion's versions stop, as text the
database compares, and in the product index, so that matching seeks only the criteria an
asset's version can fall in; vuln_cpe_match.in_complex: whether the criterion is listed in a
configuration that needs a full evaluation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:10:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from inventory.services.vuln_import import MATCH_COLUMNS, match_rows
from inventory.vulns.index import version_sort
from inventory.vulns.matching import ShapeError, parse_configurations

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000
# criteria ... end_including in a match_rows row: what tells a record's criteria apart
_KEY = slice(MATCH_COLUMNS.index("criteria"), MATCH_COLUMNS.index("end_including") + 1)
_IN_COMPLEX = MATCH_COLUMNS.index("in_complex")
MATCH = sa.table(
    "vuln_cpe_match",
    sa.column("id", sa.Integer),
    sa.column("vulnerability_id", sa.Integer),
    sa.column("criteria", sa.String),
    sa.column("vulnerable", sa.Boolean),
    sa.column("version_start", sa.String),
    sa.column("start_including", sa.Boolean),
    sa.column("version_end", sa.String),
    sa.column("end_including", sa.Boolean),
    sa.column("version_sort", sa.String),
    sa.column("in_complex", sa.Boolean),
)


def upgrade() -> None:
    column_type = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
    with op.batch_alter_table("vuln_cpe_match") as batch:
        batch.add_column(sa.Column("version_sort", column_type, nullable=True))
        # Criteria imported before: as if in a configuration that needs a full evaluation
        # (what matching did with every criterion of such a record so far).
        batch.add_column(
            sa.Column("in_complex", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch.drop_index("ix_vuln_cpe_match_product")
    # Criteria imported before: worked out here (a row left None would only be read always).
    connection = op.get_bind()
    table = MATCH
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
    _fill_in_complex(connection)
    # Built once filled (faster than keeping it up to date row by row).
    with op.batch_alter_table("vuln_cpe_match") as batch:
        batch.create_index(
            "ix_vuln_cpe_match_product", ["vendor", "product", "vulnerable", "version_sort"]
        )


def _fill_in_complex(connection: Any) -> None:
    """in_complex false for the criteria that only single-node ORs list: every criterion of a
    record that needs no full evaluation, and those of the others listed in no configuration
    that needs one (the import's own rows, vuln_import.match_rows, say which)."""
    vulnerability = sa.table(
        "vulnerability",
        sa.column("id", sa.Integer),
        sa.column("configurations", sa.JSON),
        sa.column("needs_full_check", sa.Boolean),
    )
    match = MATCH
    simple_records = sa.select(vulnerability.c.id).where(
        vulnerability.c.needs_full_check.is_(False)
    )
    connection.execute(
        match.update().where(match.c.vulnerability_id.in_(simple_records)).values(in_complex=False)
    )
    last = 0
    while True:
        records = connection.execute(
            sa.select(vulnerability.c.id, vulnerability.c.configurations)
            .where(vulnerability.c.needs_full_check.is_(True), vulnerability.c.id > last)
            .order_by(vulnerability.c.id)
            .limit(2000)
        ).all()
        if not records:
            break
        last = records[-1][0]
        simple_only: dict[int, set[tuple[Any, ...]]] = {}
        for vid, raw in records:
            try:
                built = match_rows(vid, parse_configurations(raw))
            except ShapeError:
                continue  # left as complex: a full evaluation, as before
            simple_only[vid] = {row[_KEY] for row in built if not row[_IN_COMPLEX]}
        rows = connection.execute(
            sa.select(
                match.c.id,
                match.c.vulnerability_id,
                match.c.criteria,
                match.c.vulnerable,
                match.c.version_start,
                match.c.start_including,
                match.c.version_end,
                match.c.end_including,
            ).where(match.c.vulnerability_id.in_(list(simple_only)))
        ).all()
        ids = [
            {"row_id": row_id}
            for row_id, vid, criteria, vulnerable, start, start_inc, end, end_inc in rows
            if (criteria, bool(vulnerable), start, bool(start_inc), end, bool(end_inc))
            in simple_only[vid]
        ]
        if ids:
            connection.execute(
                match.update().where(match.c.id == sa.bindparam("row_id")).values(in_complex=False),
                ids,
            )


def downgrade() -> None:
    with op.batch_alter_table("vuln_cpe_match") as batch:
        batch.drop_index("ix_vuln_cpe_match_product")
        batch.create_index("ix_vuln_cpe_match_product", ["vendor", "product", "vulnerable"])
        batch.drop_column("in_complex")
        batch.drop_column("version_sort")
