"""A report's content, built once from plain rows: the snapshot (pure; no database, no Flask).

The services read assets, findings and the previous report of the same schedule, and hand them
here as dictionaries; `build_snapshot` returns one JSON-ready document with everything a report
says: the assets in scope, their findings in "fix this first" order, the changes since the
baseline, who is overdue for audit, the trend, coverage and headline totals. Every format is
rendered from that document alone, so a report re-rendered a year later says the same.

Dates are ISO 8601 strings in UTC. Finding evidence keeps numbers, yes/no and list lengths, plus
the few words the titles are built from (the port's service, the CVE...): never text a probed
system sent, so no patient value can reach a report through it (PRODUCT.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

SCHEMA = "vigie-report"
VERSION = 1
SEVERITIES = ("critical", "high", "medium", "low", "info")
ACTIVE = ("open", "reopened", "accepted")  # still there, whatever was decided about it
OPEN = ("open", "reopened")  # calls for action
# Checks that, on an asset holding patient data, mean the data is open to anyone on the network.
EXPOSES_DATA = frozenset(
    {
        "dicom.query-without-authorization",
        "dicom.open-association",
        "http.no-authentication",
        "database.no-authentication",
        "ftp.anonymous-login",
        "smb.guest-access",
        "auth.default-credentials",
    }
)
DISCOVERY = "asset.unregistered"
# Evidence values the finding titles are made from (Vigie's own words, the asset's declared
# AE titles, software names); any other evidence is kept only as a number or a length.
TEXT_EVIDENCE = frozenset(
    {
        "called_ae",
        "weaknesses",
        "product",
        "service",
        "username",
        "factory_password",
        "cve",
        "software",
        "kev_added",
    }
)
TREND_POINTS = 12


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def safe_evidence(evidence: Mapping[str, Any] | None) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in sorted((evidence or {}).items()):
        if isinstance(value, bool | int | float):
            kept[key] = value
        elif key in TEXT_EVIDENCE and isinstance(value, str):
            kept[key] = value[:200]
        elif key in TEXT_EVIDENCE and isinstance(value, list | tuple):
            kept[key] = [str(v)[:64] for v in value][:20]
        elif isinstance(value, list | tuple | dict | set):
            kept[key] = len(value)
    return kept


def severity_counts(findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(str(f["severity"]) for f in findings)
    return {s: counts.get(s, 0) for s in SEVERITIES}


# --- the parts ------------------------------------------------------------------------------


def overdue_assets(assets: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Assets not audited successfully within their interval, most overdue first.

    An asset never audited successfully counts from when it was first scheduled (as for
    `audit.stale`); `stale` marks those past twice their interval."""
    rows = []
    for asset in assets:
        reference = parse_iso(asset["last_success_at"]) or parse_iso(asset["scheduled_at"])
        if reference is None:
            continue
        interval = timedelta(seconds=int(asset["interval"]))
        due = reference + interval
        if due < now:
            rows.append(
                {
                    "asset_id": asset["id"],
                    "due_since": iso(due),
                    "stale": reference + 2 * interval < now,
                }
            )
    rows.sort(key=lambda r: (r["due_since"], r["asset_id"]))
    return rows


def compute_changes(
    *,
    assets: Sequence[Mapping[str, Any]],
    findings: Sequence[Mapping[str, Any]],
    baseline: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """What changed since the baseline snapshot; None for a first report (nothing to compare)."""
    if baseline is None:
        return None
    since = parse_iso(baseline["generated_at"])
    before = {f["id"]: f for f in baseline["findings"]}
    before_assets = {a["id"]: a for a in baseline["assets"]}
    now_assets = {a["id"] for a in assets}
    new, fixed, reopened, accepted, expired, discovered = [], [], [], [], [], []
    for finding in findings:
        fid, status = finding["id"], finding["status"]
        old = before.get(fid)
        old_status = old["status"] if old else None
        if status == "fixed":
            if old_status in ACTIVE:
                fixed.append(fid)
            continue
        if old is None:
            first_seen = parse_iso(finding["first_seen"])
            if status == "reopened" and first_seen is not None and since and first_seen <= since:
                reopened.append(fid)  # fixed before the baseline, back now
            else:
                new.append(fid)
                if finding["check"] == DISCOVERY:
                    discovered.append(fid)
            if status == "accepted":
                accepted.append(fid)
            continue
        if old_status == "fixed" and status in ACTIVE:
            reopened.append(fid)
        if status == "accepted" and (
            old_status != "accepted" or old.get("accepted_until") != finding["accepted_until"]
        ):
            accepted.append(fid)
        if old_status == "accepted" and status in OPEN:
            expired.append(fid)
    return {
        "since": baseline["generated_at"],
        "new": new,
        "fixed": fixed,
        "reopened": reopened,
        "accepted": accepted,
        "expired": expired,
        "discovered": discovered,
        "assets_added": sorted(a for a in now_assets if a not in before_assets),
        "assets_removed": [
            {k: before_assets[a].get(k) for k in ("id", "name", "kind", "site", "zone")}
            for a in sorted(before_assets)
            if a not in now_assets
        ],
    }


def exposing_assets(
    assets: Sequence[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Assets holding patient data with an open finding that lays the data open to anyone."""
    patient = {a["id"] for a in assets if a["patient_data"]}
    return sorted(
        {
            f["asset_id"]
            for f in findings
            if f["status"] in OPEN and f["check"] in EXPOSES_DATA and f["asset_id"] in patient
        }
    )


def totals(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Headline numbers, kept beside the snapshot for lists and for the next reports' trend."""
    findings = snapshot["findings"]
    open_ = [f for f in findings if f["status"] in OPEN]
    changes = snapshot["changes"] or {}
    return {
        "assets": len(snapshot["assets"]),
        "open": len(open_),
        "open_by_severity": severity_counts(open_),
        "accepted": sum(1 for f in findings if f["status"] == "accepted"),
        "overdue": len(snapshot["overdue"]),
        "on_time": len(snapshot["assets"]) - len(snapshot["overdue"]),
        "exposing": len(snapshot["exposing"]),
        "new": len(changes.get("new", [])),
        "fixed": len(changes.get("fixed", [])),
    }


def build_snapshot(
    *,
    meta: Mapping[str, Any],
    assets: Sequence[Mapping[str, Any]],
    findings: Sequence[Mapping[str, Any]],
    baseline: Mapping[str, Any] | None,
    trend: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """The whole report as one JSON-ready document.

    `meta`: title, language, timezone, scope {type, value}, schedule {id, name} or None, baseline
    {report_id, generated_at} or None. `assets` sorted by name; `findings` in "fix this first"
    order, the fixed ones only when fixed since the baseline. `trend`: earlier reports' points
    {at, open_by_severity}, oldest first.
    """
    asset_rows = [dict(a) for a in assets]
    finding_rows = [{**f, "evidence": safe_evidence(f.get("evidence"))} for f in findings]
    snapshot: dict[str, Any] = {
        "schema": SCHEMA,
        "version": VERSION,
        "generated_at": iso(now),
        **{k: meta[k] for k in ("title", "language", "timezone", "scope", "schedule", "baseline")},
        "assets": asset_rows,
        "findings": finding_rows,
        "changes": compute_changes(assets=asset_rows, findings=finding_rows, baseline=baseline),
        "overdue": overdue_assets(asset_rows, now),
        "exposing": exposing_assets(asset_rows, finding_rows),
    }
    snapshot["totals"] = totals(snapshot)
    points = [
        {"at": p["at"], "open_by_severity": dict(p["open_by_severity"])}
        for p in list(trend)[-(TREND_POINTS - 1) :]
    ]
    points.append(
        {"at": snapshot["generated_at"], "open_by_severity": snapshot["totals"]["open_by_severity"]}
    )
    snapshot["trend"] = points
    return snapshot
