"""What the HTML and PDF templates draw, derived from a snapshot (pure): the fix-first list,
remediation by check, the changes resolved to findings and assets, the overdue assets, coverage,
and each asset's findings for the appendix."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inventory.reports.data import OPEN, SEVERITIES
from inventory.reports.words import Words

# The fix-first list opens the report with the most urgent findings in full (title, asset,
# remediation); every other open finding follows under its asset in the appendix, and all of
# them are in the CSV. The remediation-by-check table covers them all.
FIX_FIRST_SHOWN = 15


@dataclass
class CheckGroup:
    check: str
    severity: str
    findings: int = 0
    assets: set[int] = field(default_factory=set)
    remediation: str = ""
    example: str = ""


@dataclass
class ReportView:
    snapshot: Mapping[str, Any]
    w: Words
    assets: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    by_asset: dict[int, list[Mapping[str, Any]]] = field(default_factory=dict)
    findings: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    open_findings: list[Mapping[str, Any]] = field(default_factory=list)
    accepted: list[Mapping[str, Any]] = field(default_factory=list)
    groups: list[CheckGroup] = field(default_factory=list)
    changes: dict[str, Any] | None = None
    overdue: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = field(default_factory=list)

    @property
    def fix_first(self) -> list[Mapping[str, Any]]:
        return self.open_findings[:FIX_FIRST_SHOWN]

    def by_check(self, keys: tuple[str, ...]) -> list[tuple[str, str, dict[str, int]]]:
        """Counts per check of some lists of findings (the changes, the accepted risks), most
        severe first: what a large inventory's PDF shows instead of a line per finding."""
        rows: dict[str, tuple[str, dict[str, int]]] = {}
        for key in keys:
            source = self.accepted if key == "accepted_now" else (self.changes or {}).get(key, [])
            for finding in source:
                severity, counts = rows.setdefault(finding["check"], (finding["severity"], {}))
                counts[key] = counts.get(key, 0) + 1
                if SEVERITIES.index(finding["severity"]) < SEVERITIES.index(severity):
                    rows[finding["check"]] = (finding["severity"], counts)
        return sorted(
            ((check, sev, counts) for check, (sev, counts) in rows.items()),
            key=lambda r: (SEVERITIES.index(r[1]), r[0]),
        )

    def severity_counts(self, asset_id: int) -> list[tuple[str, int]]:
        """An asset's open findings by severity, and its accepted ones (for one-line entries)."""
        counts: dict[str, int] = {}
        for finding in self.by_asset.get(asset_id, []):
            key = "accepted" if finding["status"] == "accepted" else finding["severity"]
            counts[key] = counts.get(key, 0) + 1
        return [(k, counts[k]) for k in (*SEVERITIES, "accepted") if counts.get(k)]

    @property
    def coverage(self) -> tuple[int, int, int]:
        totals = self.snapshot["totals"]
        total, on_time = totals["assets"], totals["on_time"]
        return on_time, total, round(100 * on_time / total) if total else 100


def build_view(snapshot: Mapping[str, Any], w: Words) -> ReportView:
    view = ReportView(snapshot=snapshot, w=w)
    view.assets = {a["id"]: a for a in snapshot["assets"]}
    by_asset: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    groups: dict[str, CheckGroup] = {}
    for finding in snapshot["findings"]:
        view.findings[finding["id"]] = finding
        status = finding["status"]
        if status == "fixed":
            continue
        by_asset[finding["asset_id"]].append(finding)
        if status == "accepted":
            view.accepted.append(finding)
            continue
        view.open_findings.append(finding)
        group = groups.get(finding["check"])
        if group is None:
            group = groups[finding["check"]] = CheckGroup(
                finding["check"], finding["severity"], remediation=w.remediation(finding)
            )
            group.example = w.title(finding)
        group.findings += 1
        group.assets.add(finding["asset_id"])
        if SEVERITIES.index(finding["severity"]) < SEVERITIES.index(group.severity):
            group.severity = finding["severity"]
    view.by_asset = dict(by_asset)
    # Findings arrive most urgent first, so groups keep that order too.
    view.groups = sorted(
        groups.values(), key=lambda g: (SEVERITIES.index(g.severity), -g.findings, g.check)
    )
    changes = snapshot["changes"]
    if changes is not None:
        resolve = view.findings.__getitem__
        view.changes = {
            key: [resolve(i) for i in changes[key]]
            for key in ("new", "fixed", "reopened", "accepted", "expired", "discovered")
        }
        view.changes["assets_added"] = [view.assets[i] for i in changes["assets_added"]]
        view.changes["assets_removed"] = changes["assets_removed"]
        view.changes["since"] = changes["since"]
    view.overdue = [(view.assets[row["asset_id"]], row) for row in snapshot["overdue"]]
    return view


def open_count(findings: list[Mapping[str, Any]]) -> int:
    return sum(1 for f in findings if f["status"] in OPEN)
