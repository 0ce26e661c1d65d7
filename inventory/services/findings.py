"""Findings as people read and decide on them: the "fix this first" list with its filters, one
asset's findings, services and audits, and accepted risks with their expiry.

An accepted risk is a decision with a reason and an end: once its date has passed the finding is
open again (reopened), recorded like every other status change (who, when, from what to what).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, type_coerce, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import (
    Asset,
    Audit,
    Exposure,
    Finding,
    FindingEvent,
    FindingStatus,
    ObservedService,
    Severity,
    VulnMatchState,
)
from inventory.models.types import UTCDateTime, utcnow, valid_id
from inventory.services.vuln_findings import VULN_CHECKS

# Statuses that still call for action or a decision; "open" in a filter means open or reopened.
OPEN_STATUSES = (FindingStatus.open, FindingStatus.reopened)
ACCEPTABLE = (FindingStatus.open, FindingStatus.reopened, FindingStatus.accepted)
MAX_ACCEPTANCE = timedelta(days=366)
MAX_REASON = 2000
EXPIRY_ACTOR = "system"
_EXPOSURE_RANK = {Exposure.public: 0, Exposure.vpn: 1, Exposure.internal: 2}


@dataclass
class FindingQuery:
    """Filters of the findings list; empty means any. `status` "open" also matches reopened."""

    severity: str = ""
    check: str = ""
    status: str = ""
    site: str = ""
    zone: str = ""
    kind: str = ""
    asset_id: int | None = None
    statuses: list[FindingStatus] = field(default_factory=list)

    def wanted_statuses(self) -> list[FindingStatus]:
        wanted = list(self.statuses)
        if self.status == FindingStatus.open:
            wanted += list(OPEN_STATUSES)
        elif self.status in {s.value for s in FindingStatus}:
            wanted.append(FindingStatus(self.status))
        return wanted


# "Fix this first", as SQL so the database sorts (and can later page) however many findings there
# are: severity, then patient data held, then exposure (public > VPN > internal), then age.
_SEVERITY_RANK = case(
    {s.value: i for i, s in enumerate(Severity)}, value=Finding.severity, else_=-1
)
_EXPOSURE_ORDER = case(
    {e.value: rank for e, rank in _EXPOSURE_RANK.items()}, value=Asset.exposure, else_=3
)
FIX_FIRST_ORDER = (
    _SEVERITY_RANK.desc(),
    Asset.holds_patient_data.desc(),  # type: ignore[attr-defined]
    _EXPOSURE_ORDER,
    Finding.first_seen,
    Asset.name_key,
    Finding.subject,
    Finding.check_id,
)

# The same, least urgent first.
FIX_FIRST_REVERSED = (
    _SEVERITY_RANK.asc(),
    Asset.holds_patient_data.asc(),  # type: ignore[attr-defined]
    _EXPOSURE_ORDER.desc(),
    Finding.first_seen.desc(),  # type: ignore[attr-defined]
    Asset.name_key.desc(),  # type: ignore[attr-defined]
    Finding.subject.desc(),  # type: ignore[attr-defined]
    Finding.check_id.desc(),  # type: ignore[attr-defined]
)


def last_seen_column() -> Any:
    """A finding's last-seen date as shown. A vulnerability finding still there was seen again
    each time its asset was matched against the feeds: that date is kept once per asset
    (vuln_match_state), not written to each of its findings."""
    matched = (
        select(VulnMatchState.matched_at)
        .where(VulnMatchState.asset_id == Finding.asset_id)
        .correlate(Finding)
        .scalar_subquery()
    )
    return type_coerce(
        case(
            (
                and_(
                    Finding.check_id.in_(VULN_CHECKS),  # type: ignore[attr-defined]
                    Finding.status != str(FindingStatus.fixed),
                    matched > Finding.last_seen,
                ),
                matched,
            ),
            else_=Finding.last_seen,
        ),
        UTCDateTime(),
    ).label("seen")


def _show_seen(finding: Finding, seen: datetime | None) -> Finding:
    """The finding with its last-seen date as shown (not a change to write)."""
    if seen is not None and seen != finding.last_seen:
        set_committed_value(finding, "last_seen", seen)
    return finding


def _filtered(statement: Any, statuses: Sequence[FindingStatus] | None, query: FindingQuery) -> Any:
    """`statement` (over Finding joined to Asset) narrowed to the query's filters."""
    wanted = [*(statuses or []), *query.wanted_statuses()]
    if wanted:
        statement = statement.where(Finding.status.in_([str(s) for s in wanted]))  # type: ignore[attr-defined]
    if query.severity:
        statement = statement.where(Finding.severity == query.severity)
    if query.check:
        statement = statement.where(Finding.check_id == query.check)
    if query.asset_id is not None:
        statement = statement.where(Finding.asset_id == query.asset_id)
    for name in ("site", "zone", "kind"):
        value = getattr(query, name)
        if value:
            statement = statement.where(getattr(Asset, name) == value)
    return statement


# Other orders than "fix this first" (the API offers them); the fix-first order breaks ties.
SORTS = {
    "fix-first": (),
    "first_seen": (Finding.first_seen,),
    "last_seen": (last_seen_column(),),
}


def list_findings(
    *,
    session: Session,
    statuses: Sequence[FindingStatus] | None = None,
    query: FindingQuery | None = None,
    sort: str = "fix-first",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[tuple[Finding, Asset]]:
    """Findings with their asset in "fix this first" order (FIX_FIRST_ORDER), or by `sort`;
    `limit`/`offset` page through them in the database.

    Call expire_acceptances first where expired acceptances must show as open again.
    """
    query = query or FindingQuery()
    statement = _filtered(
        select(Finding, Asset, last_seen_column()).join(Asset, Asset.id == Finding.asset_id),  # type: ignore[arg-type]
        statuses,
        query,
    )
    if sort == "fix-first":
        order: tuple[Any, ...] = FIX_FIRST_REVERSED if descending else FIX_FIRST_ORDER
    else:
        column = SORTS[sort][0]
        order = (column.desc() if descending else column.asc(), *FIX_FIRST_ORDER)
    statement = statement.order_by(*order).offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return [(_show_seen(f, seen), a) for f, a, seen in session.execute(statement).all()]


def count_findings(
    *,
    session: Session,
    statuses: Sequence[FindingStatus] | None = None,
    query: FindingQuery | None = None,
) -> int:
    statement = _filtered(
        select(func.count()).select_from(Finding).join(Asset, Asset.id == Finding.asset_id),  # type: ignore[arg-type]
        statuses,
        query or FindingQuery(),
    )
    return int(session.scalar(statement) or 0)


def check_ids(*, session: Session) -> list[str]:
    """Check ids that have findings, for the filter menu."""
    return list(session.scalars(select(Finding.check_id).distinct().order_by(Finding.check_id)))


def get_finding(*, session: Session, finding_id: int) -> Finding:
    finding = session.get(Finding, finding_id) if valid_id(finding_id) else None
    if finding is None:
        raise NotFound(N_("No finding with id %(id)s."), id=finding_id)
    if finding.check_id in VULN_CHECKS:
        seen = session.scalar(select(last_seen_column()).where(Finding.id == finding.id))
        _show_seen(finding, seen)
    return finding


def finding_events(*, session: Session, finding_id: int) -> Sequence[FindingEvent]:
    """Status changes of one finding, newest first."""
    return session.scalars(
        select(FindingEvent)
        .where(FindingEvent.finding_id == finding_id)
        .order_by(FindingEvent.at.desc(), FindingEvent.id.desc())  # type: ignore[attr-defined,union-attr]
    ).all()


def findings_of(*, session: Session, asset_id: int) -> list[Finding]:
    """One asset's findings: those still open first, each group in "fix this first" order."""
    rows = list_findings(session=session, query=FindingQuery(asset_id=asset_id))
    return [f for f, _ in sorted(rows, key=lambda r: r[0].status not in ACCEPTABLE)]


def observed_services(*, session: Session, asset_id: int) -> Sequence[ObservedService]:
    return session.scalars(
        select(ObservedService)
        .where(ObservedService.asset_id == asset_id)
        .order_by(ObservedService.address, ObservedService.port, ObservedService.protocol)
    ).all()


def latest_audits(*, session: Session, asset_id: int, limit: int = 10) -> Sequence[Audit]:
    return session.scalars(
        select(Audit)
        .where(Audit.asset_id == asset_id)
        .order_by(Audit.started_at.desc(), Audit.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
    ).all()


# --- accepted risks -------------------------------------------------------------------------


def _until(value: date | datetime | None) -> datetime | None:
    """A date means "through that day" (its end, UTC); a naive datetime is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time(23, 59, 59), tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def accept_risk(
    *,
    session: Session,
    finding_id: int,
    actor: str,
    reason: str,
    until: date | datetime | None,
    now: datetime | None = None,
) -> Finding:
    """Accept a finding as a risk until a date (at most a year ahead), with a reason; recorded."""
    now = now or utcnow()
    finding = get_finding(session=session, finding_id=finding_id)
    errors: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [(N_("Say why this risk is accepted."), {})]
    elif len(reason) > MAX_REASON:
        errors["reason"] = [(N_("Keep the reason under %(max)d characters."), {"max": MAX_REASON})]
    end = _until(until)
    if end is None:
        errors["until"] = [(N_("Give the date until which the risk is accepted."), {})]
    elif end <= now:
        errors["until"] = [(N_("The expiry date must be in the future."), {})]
    elif end > now + MAX_ACCEPTANCE:
        errors["until"] = [
            (N_("A risk can be accepted for one year at most; choose an earlier date."), {})
        ]
    if finding.status not in ACCEPTABLE:
        raise InvalidInput(N_("This finding is fixed; there is no risk left to accept."))
    if errors:
        raise InvalidInput(
            N_("Some fields need correcting; see the messages below each one."), fields=errors
        )
    assert end is not None
    try:
        old = str(finding.status)
        finding.status = FindingStatus.accepted
        finding.accepted_reason = reason
        finding.accepted_until = end
        finding.accepted_by = actor[:64]
        session.add(finding)
        session.add(
            FindingEvent(
                finding_id=finding.id,  # type: ignore[arg-type]
                at=now,
                actor=actor[:64],
                old_status=old,
                new_status=str(FindingStatus.accepted),
                note=f"until {end.date().isoformat()}: {reason}",
            )
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    return finding


def expire_acceptances(*, session: Session, now: datetime | None = None) -> int:
    """Accepted risks past their date are open again (reopened); returns how many expired.

    Each row is switched by a guarded UPDATE, so two requests expiring at once record one event.
    """
    now = now or utcnow()
    ids = list(
        session.scalars(
            select(Finding.id).where(
                Finding.status == str(FindingStatus.accepted),
                Finding.accepted_until <= now,  # type: ignore[operator]
            )
        )
    )
    if not ids:
        return 0
    expired = 0
    try:
        for finding_id in ids:
            result = session.execute(
                update(Finding)
                .where(Finding.id == finding_id, Finding.status == str(FindingStatus.accepted))  # type: ignore[arg-type]
                .values(status=str(FindingStatus.reopened))
            )
            if getattr(result, "rowcount", 0) == 1:
                expired += 1
                session.add(
                    FindingEvent(
                        finding_id=finding_id,  # type: ignore[arg-type]
                        at=now,
                        actor=EXPIRY_ACTOR,
                        old_status=str(FindingStatus.accepted),
                        new_status=str(FindingStatus.reopened),
                        note="risk acceptance expired",
                    )
                )
        session.commit()
    except Exception:
        session.rollback()
        raise
    # Objects already loaded in this session must not keep the old status.
    session.expire_all()
    return expired
