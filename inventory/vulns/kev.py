"""CISA Known Exploited Vulnerabilities catalog entries, read and checked one by one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from inventory.vulns.nvd import CVE_ID, RecordError

__all__ = ["KevRecord", "read_kev"]


@dataclass
class KevRecord:
    cve_id: str
    date_added: date
    due_date: date | None = None
    vendor_project: str = ""
    product: str = ""
    name: str = ""
    ransomware: str = ""
    required_action: str = ""
    short_description: str = ""


def _date(value: Any, what: str, required: bool = False) -> date | None:
    if value in (None, "") and not required:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise RecordError(f"`{what}` is not a date: {str(value)[:20]!r}") from None


def _text(item: dict[str, Any], key: str, limit: int) -> str:
    value = item.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def read_kev(item: Any) -> KevRecord:
    """One element of the catalog's `vulnerabilities` as a KevRecord, or RecordError."""
    if not isinstance(item, dict):
        raise RecordError("not an object")
    cve_id = item.get("cveID")
    if not isinstance(cve_id, str) or not CVE_ID.match(cve_id.strip()):
        raise RecordError(f"`cveID` is not a CVE id: {str(cve_id)[:40]!r}")
    added = _date(item.get("dateAdded"), "dateAdded", required=True)
    assert added is not None
    return KevRecord(
        cve_id=cve_id.strip(),
        date_added=added,
        due_date=_date(item.get("dueDate"), "dueDate"),
        vendor_project=_text(item, "vendorProject", 200),
        product=_text(item, "product", 200),
        name=_text(item, "vulnerabilityName", 300),
        ransomware=_text(item, "knownRansomwareCampaignUse", 16),
        required_action=_text(item, "requiredAction", 5000),
        short_description=_text(item, "shortDescription", 5000),
    )
