"""/api/v1/findings: the "fix this first" list, one finding with its history, and accepting a
finding as a risk (auditor or admin), with the web pages' filters and rules.

There is no way back from an accepted risk other than its expiry (or accepting it again with
another reason or date), as on the web pages.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import request

from inventory.api.base import (
    MAX_PER_PAGE,
    FieldErrors,
    actor,
    bp,
    choice_arg,
    int_arg,
    iso,
    json_body,
    paging_fields,
    requires,
    text_arg,
)
from inventory.db import get_session
from inventory.errors import InvalidInput
from inventory.models import Asset, AssetKind, Finding, FindingEvent, FindingStatus, Role, Severity
from inventory.models.types import valid_id
from inventory.services import assets as asset_service
from inventory.services import findings as finding_service
from inventory.services.vuln_findings import VULN_CHECKS, vulnerabilities_of

STATUSES = ("open", "reopened", "accepted", "fixed", "all")  # "open" also means reopened
SORTS = tuple(finding_service.SORTS)


def evidence_counts(evidence: dict[str, Any] | None) -> dict[str, Any]:
    """Numbers and yes/no as stored, lists by their length, text left out: as on the finding
    page, the API never repeats what a peer sent (index or database names may be anything)."""
    counts: dict[str, Any] = {}
    for key, value in sorted((evidence or {}).items()):
        if isinstance(value, bool | int | float):
            counts[key] = value
        elif isinstance(value, list | tuple | dict | set):
            counts[key] = len(value)
    return counts


def finding_public(
    finding: Finding, asset: Asset, vulnerability: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A finding as scripts see it; the acceptance fields only while the risk is accepted;
    `vulnerability` (CVE, CVSS, KEV dates, description, references) on vuln.* findings."""
    accepted = finding.status == FindingStatus.accepted
    extra = {"vulnerability": vulnerability} if finding.check_id in VULN_CHECKS else {}
    return {
        "id": finding.id,
        "asset": {"id": asset.id, "name": asset.name},
        "address": finding.address,
        "port": finding.port,
        "subject": finding.subject,
        "check": finding.check_id,
        "severity": str(finding.severity),
        "status": str(finding.status),
        "title": finding.title,
        "remediation": finding.remediation,
        "evidence": evidence_counts(finding.evidence),
        "first_seen": iso(finding.first_seen),
        "last_seen": iso(finding.last_seen),
        "fixed_at": iso(finding.fixed_at),
        "accepted_reason": finding.accepted_reason if accepted else None,
        "accepted_by": finding.accepted_by if accepted else None,
        "accepted_until": iso(finding.accepted_until) if accepted else None,
        **extra,
    }


def _event_public(event: FindingEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "actor": event.actor,
        "old_status": event.old_status,
        "new_status": event.new_status,
        "note": event.note,
    }


def _query_from_args(errors: FieldErrors) -> finding_service.FindingQuery:
    args = request.args
    status = choice_arg("status", STATUSES, errors, default="open") or "open"
    asset_id: int | None = None
    if args.get("asset_id"):
        try:
            asset_id = int(args["asset_id"])
        except ValueError:
            asset_id = 0
        if not valid_id(asset_id):  # also keeps ids PostgreSQL cannot compare out of the query
            errors["asset_id"] = [("asset_id must be an asset's id (a whole number).", {})]
            asset_id = None
    return finding_service.FindingQuery(
        severity=choice_arg("severity", [s.value for s in Severity], errors),
        check=text_arg("check"),
        status="" if status == "all" else status,
        site=text_arg("site"),
        zone=text_arg("zone"),
        kind=choice_arg("kind", [k.value for k in AssetKind], errors),
        asset_id=asset_id,
    )


@bp.get("/findings")
@requires(Role.viewer)
def list_findings() -> Any:
    errors: FieldErrors = {}
    query = _query_from_args(errors)
    sort = choice_arg("sort", SORTS, errors, default="fix-first") or "fix-first"
    order = choice_arg("order", ("asc", "desc"), errors)
    page = int_arg("page", 1, 1, 10_000_000)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    if errors:
        raise InvalidInput("Some query arguments are not valid; see fields.", fields=errors)
    db = get_session()
    finding_service.expire_acceptances(session=db)
    total = finding_service.count_findings(session=db, query=query)
    paging = paging_fields(total, page, per_page)
    rows = finding_service.list_findings(
        session=db,
        query=query,
        sort=sort,
        descending=order == "desc",
        limit=per_page,
        offset=(paging["page"] - 1) * per_page,
    )
    vulnerabilities = vulnerabilities_of(session=db, findings=[f for f, _ in rows])
    return {
        "items": [finding_public(f, a, vulnerabilities.get(f.id)) for f, a in rows],  # type: ignore[arg-type]
        **paging,
    }


def _finding_with_events(finding_id: int) -> dict[str, Any]:
    db = get_session()
    finding = finding_service.get_finding(session=db, finding_id=finding_id)
    asset = asset_service.get_asset(session=db, asset_id=finding.asset_id)
    events = finding_service.finding_events(session=db, finding_id=finding_id)
    vulnerability = vulnerabilities_of(session=db, findings=[finding]).get(finding_id)
    return {
        **finding_public(finding, asset, vulnerability),
        "events": [_event_public(e) for e in events],
    }


@bp.get("/findings/<int:finding_id>")
@requires(Role.viewer)
def get_finding(finding_id: int) -> Any:
    finding_service.expire_acceptances(session=get_session())
    return _finding_with_events(finding_id)


def _parse_until(raw: Any) -> tuple[date | datetime | None, str | None]:
    """A date (through that day, UTC) or an ISO-8601 datetime; (value, error message)."""
    if raw is None or raw == "":
        return None, None  # the service says a date is needed
    if not isinstance(raw, str):
        return None, "until must be a date written like 2027-03-31."
    text = raw.strip()
    try:
        return date.fromisoformat(text), None
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text), None
    except ValueError:
        return None, f"{text[:40]!r} is not a date (expected e.g. 2027-03-31)."


@bp.post("/findings/<int:finding_id>/accept")
@requires(Role.auditor)
def accept_risk(finding_id: int) -> Any:
    """Accept a finding as a risk until a date, with a reason; the same rules as the web form."""
    body = json_body('"reason" and "until"')
    reason = body.get("reason", "")
    until, until_error = _parse_until(body.get("until"))
    errors: FieldErrors = {}
    if not isinstance(reason, str):
        errors["reason"] = [("reason must be text.", {})]
        reason = ""
    if until_error:
        errors["until"] = [(until_error, {})]
    # The service checks reason, date and status before writing anything. A value we could not
    # read reaches it as "" or None, which it always refuses, so its messages for the other
    # fields come back too; ours replace its "no date" or "no reason" for the same field.
    try:
        finding_service.accept_risk(
            session=get_session(), finding_id=finding_id, actor=actor(), reason=reason, until=until
        )
    except InvalidInput as exc:
        if errors and exc.fields:
            raise InvalidInput(exc.message, fields={**exc.fields, **errors}) from None
        raise
    return _finding_with_events(finding_id)
