"""The report's findings as CSV, one row per finding, most urgent first: those still there,
then those fixed since the previous report. Columns as in `inventory findings list --format csv`
plus the asset's site, zone and kind, what changed, and the remediation, in the report's
language. Cells that a spreadsheet would run as a formula are written as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from inventory.reports.words import words_for
from inventory.services.transfer import _guard

COLUMNS = [
    "asset",
    "site",
    "zone",
    "kind",
    "address",
    "port",
    "check",
    "severity",
    "status",
    "change",
    "title",
    "remediation",
    "first_seen",
    "last_seen",
    "fixed_at",
    "accepted_until",
    "accepted_reason",
]


def render_csv(snapshot: Mapping[str, Any]) -> bytes:
    w = words_for(snapshot)
    assets = {a["id"]: a for a in snapshot["assets"]}
    change: dict[int, str] = {}
    for key in ("accepted", "expired", "reopened", "fixed", "new"):
        for finding_id in (snapshot["changes"] or {}).get(key, []):
            change[finding_id] = key
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for f in snapshot["findings"]:
        asset = assets.get(f["asset_id"], {})
        writer.writerow(
            [
                _guard(str(v)) if isinstance(v, str) else ("" if v is None else v)
                for v in (
                    asset.get("name", ""),
                    asset.get("site", ""),
                    asset.get("zone", ""),
                    asset.get("kind", ""),
                    f["address"],
                    f["port"],
                    f["check"],
                    f["severity"],
                    f["status"],
                    change.get(f["id"], ""),
                    w.title(f),
                    w.remediation(f),
                    f["first_seen"],
                    f["last_seen"],
                    f["fixed_at"],
                    f["accepted_until"],
                    f["accepted_reason"],
                )
            ]
        )
    # A byte-order mark so that spreadsheets read the accents as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode()
