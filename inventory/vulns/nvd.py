"""NVD API 2.0 CVE records: the fields Vigie keeps, read and checked from one `cve` object.

Scores: the first of CVSS v4.0, v3.1, v3.0, v2 that the record has, preferring the NVD's own
("Primary") scoring within a version. Records without configurations (not yet analysed) are kept
(their description and scores are useful) but never match an asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from inventory.vulns.feeds import parse_timestamp
from inventory.vulns.matching import Configuration, ShapeError, parse_configurations

__all__ = ["CveRecord", "RecordError", "read_cve"]

CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
METRICS = (
    ("cvssMetricV40", "4.0"),
    ("cvssMetricV31", "3.1"),
    ("cvssMetricV30", "3.0"),
    ("cvssMetricV2", "2.0"),
)
MAX_REFERENCES = 30


class RecordError(ValueError):
    """One record is not in the expected shape; the message says what (in English)."""


@dataclass
class CveRecord:
    cve_id: str
    last_modified: datetime
    published: datetime | None = None
    status: str = ""
    description: str = ""
    cvss_version: str = ""
    cvss_score: float | None = None
    cvss_vector: str = ""
    cvss_severity: str = ""
    references: list[str] = field(default_factory=list)
    configurations: list[Any] = field(default_factory=list)
    parsed: tuple[Configuration, ...] = ()
    cisa_exploit_add: date | None = None


def _cvss(metrics: Any) -> tuple[str, float | None, str, str]:
    if not isinstance(metrics, dict):
        return "", None, "", ""
    for key, version in METRICS:
        entries = metrics.get(key)
        if not isinstance(entries, list) or not entries:
            continue
        entries = [
            e for e in entries if isinstance(e, dict) and isinstance(e.get("cvssData"), dict)
        ]
        if not entries:
            continue
        entry = next((e for e in entries if e.get("type") == "Primary"), entries[0])
        data = entry["cvssData"]
        score = data.get("baseScore")
        severity = data.get("baseSeverity") or entry.get("baseSeverity") or ""
        return (
            version,
            float(score) if isinstance(score, (int, float)) else None,
            str(data.get("vectorString") or "")[:200],
            str(severity)[:16],
        )
    return "", None, "", ""


def read_cve(item: Any) -> CveRecord:
    """One element of `vulnerabilities` ({"cve": {...}}) as a CveRecord, or RecordError."""
    cve = item.get("cve") if isinstance(item, dict) else None
    if not isinstance(cve, dict):
        raise RecordError("no `cve` object")
    cve_id = cve.get("id")
    if not isinstance(cve_id, str) or not CVE_ID.match(cve_id):
        raise RecordError(f"`id` is not a CVE id: {str(cve_id)[:40]!r}")
    modified = parse_timestamp(cve.get("lastModified"))
    if modified is None:
        raise RecordError("`lastModified` is missing or not a date")
    descriptions = cve.get("descriptions") or []
    if not isinstance(descriptions, list):
        raise RecordError("`descriptions` is not a list")
    description = next(
        (d.get("value", "") for d in descriptions if isinstance(d, dict) and d.get("lang") == "en"),
        "",
    )
    references = cve.get("references") or []
    if not isinstance(references, list):
        raise RecordError("`references` is not a list")
    urls: list[str] = []
    for ref in references:
        url = ref.get("url") if isinstance(ref, dict) else None
        if isinstance(url, str) and url.startswith(("https://", "http://")) and url not in urls:
            urls.append(url[:500])
    raw_configurations = cve.get("configurations")
    try:
        parsed = parse_configurations(raw_configurations)
    except ShapeError as exc:
        raise RecordError(f"configurations: {exc}") from None
    version, score, vector, severity = _cvss(cve.get("metrics"))
    added = cve.get("cisaExploitAdd")
    try:
        exploit_add = date.fromisoformat(added) if isinstance(added, str) else None
    except ValueError:
        exploit_add = None
    return CveRecord(
        cve_id=cve_id,
        last_modified=modified,
        published=parse_timestamp(cve.get("published")),
        status=str(cve.get("vulnStatus") or "")[:32],
        description=str(description or "")[:20_000],
        cvss_version=version,
        cvss_score=score,
        cvss_vector=vector,
        cvss_severity=severity,
        references=urls[:MAX_REFERENCES],
        configurations=raw_configurations or [],
        parsed=parsed,
        cisa_exploit_add=exploit_add,
    )
