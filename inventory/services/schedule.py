"""Scheduling rules on the database: what is due, handing it out, claims, interruptions, staleness.

The life of an asset's schedule row (models/schedule.py):

    idle --(due, dispatcher)--> queued --(worker claim)--> claimed --(audit recorded)--> idle
                                                              |
                                 claim expired / shut down ---+--> audit "interrupted", due again

Every change of state is one conditional UPDATE (on the claim's token), so a late worker, a
dispatcher and a shutting-down process can never both win: the audit is recorded together with the
row that says it is done, in one transaction, or not at all. Time and randomness come in as
arguments (`now`, `rng`): the tests drive them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, literal, not_, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from inventory.audit import AuditReport
from inventory.models import (
    Asset,
    AssetSchedule,
    Audit,
    AuditOutcome,
    Criticality,
    Finding,
)
from inventory.models.types import UTCDateTime
from inventory.scheduler import due
from inventory.scheduler.windows import Rules
from inventory.services.assets import default_interval
from inventory.settings import AssetSettings

TRIGGER = "scheduler"


@dataclass(frozen=True)
class Claim:
    """One audit a worker took: the asset, the token that proves it is still this worker's."""

    asset_id: int
    token: str
    claimed_at: datetime


@dataclass
class DispatchResult:
    created: int = 0  # schedule rows made for assets that had none
    recovered: int = 0  # expired claims marked interrupted
    queued: int = 0
    unqueued: int = 0  # queued, then held back by a window that opened since
    running: int = 0


def _dt(value: datetime) -> Any:
    return literal(value, UTCDateTime())


def interval_of(asset: Asset, defaults: AssetSettings) -> int:
    return asset.audit_interval or default_interval(
        criticality=asset.criticality, defaults=defaults
    )


def interval_expression(defaults: AssetSettings) -> Any:
    """The asset's interval in seconds, in SQL (its own, or the default for its criticality)."""
    by_criticality = case(
        {c.value: default_interval(criticality=c.value, defaults=defaults) for c in Criticality},
        value=Asset.criticality,
        else_=default_interval(criticality="medium", defaults=defaults),
    )
    return func.coalesce(Asset.audit_interval, by_criticality)


def _allowed(rules: Rules) -> Any:
    """The windows' verdict as a condition on the asset's zone and site."""
    if rules.unrestricted:
        return true()
    if rules.all_blocked:
        return false()
    zone, site = func.lower(func.trim(Asset.zone)), func.lower(func.trim(Asset.site))
    conditions = []
    if rules.blocked_zones:
        conditions.append(not_(zone.in_(sorted(rules.blocked_zones))))
    if rules.blocked_sites:
        conditions.append(not_(site.in_(sorted(rules.blocked_sites))))
    if not rules.open_all and (
        rules.restricted_all or rules.restricted_zones or rules.restricted_sites
    ):
        restricted = [true()] if rules.restricted_all else []
        if rules.restricted_zones:
            restricted.append(zone.in_(sorted(rules.restricted_zones)))
        if rules.restricted_sites:
            restricted.append(site.in_(sorted(rules.restricted_sites)))
        opened = [false()]
        if rules.open_zones:
            opened.append(zone.in_(sorted(rules.open_zones)))
        if rules.open_sites:
            opened.append(site.in_(sorted(rules.open_sites)))
        conditions.append(or_(not_(or_(*restricted)), or_(*opened)))
    return and_(true(), *conditions)


def _insert_ignoring_existing(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(AssetSchedule).on_conflict_do_nothing(index_elements=["asset_id"])
    session.execute(statement, rows)


# --- hooks called by the asset services --------------------------------------------------------


def asset_created(*, session: Session, asset: Asset, now: datetime) -> None:
    """A new asset is due at once (its audit starts at the dispatcher's next run)."""
    session.add(AssetSchedule(asset=asset, next_due_at=now, created_at=now))


def asset_edited(
    *, session: Session, asset_id: int, changes: dict[str, Any], now: datetime
) -> None:
    """New addresses or services: due at once; if an audit is running, again after it."""
    if not {"addresses", "expected_services"} & set(changes):
        return
    session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == asset_id)
        .values(
            next_due_at=_dt(now),
            rerun=case((AssetSchedule.claimed_by.is_(None), false()), else_=true()),
        )
        .execution_options(synchronize_session=False)
    )


def asset_archived(*, session: Session, asset_id: int) -> None:
    """An archived asset is audited no more (a running audit still ends and is recorded)."""
    session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == asset_id)
        .values(next_due_at=None, queued_at=None, rerun=False)
        .execution_options(synchronize_session=False)
    )


def asset_restored(*, session: Session, asset_id: int, now: datetime) -> None:
    session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == asset_id)
        .values(next_due_at=_dt(now))
        .execution_options(synchronize_session=False)
    )


def audit_recorded(
    *, session: Session, asset_id: int, outcome: str, duration: float, now: datetime, actor: str
) -> None:
    """An audit run outside the scheduler ("Audit now", the CLI, the API): the schedule shows it
    as the last run (and last success), and a stale asset is stale no more. The next scheduled
    audit keeps its time. No commit: the caller records the audit in the same transaction."""
    values: dict[str, Any] = {
        "last_audit_at": _dt(now),
        "last_outcome": outcome,
        "last_duration": duration,
    }
    if outcome == AuditOutcome.completed:
        values["last_success_at"] = _dt(now)
    session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == asset_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if outcome == AuditOutcome.completed:
        from inventory.services.stale import fix_stale

        fix_stale(session, [asset_id], now, f"audit by {actor}"[:64])


# --- the dispatcher ----------------------------------------------------------------------------


def backfill(*, session: Session, now: datetime, spread: float, rng: random.Random) -> int:
    """Schedule rows for live assets that have none (bulk imports, assets from before
    scheduling): due at once, spread over `spread` seconds. No commit."""
    missing = session.scalars(
        select(Asset.id)
        .outerjoin(AssetSchedule, AssetSchedule.asset_id == Asset.id)
        .where(AssetSchedule.asset_id.is_(None), Asset.archived_at.is_(None))
    ).all()
    for start in range(0, len(missing), 5000):
        chunk = missing[start : start + 5000]
        _insert_ignoring_existing(
            session,
            [
                {
                    "asset_id": asset_id,
                    "next_due_at": due.first_due(now, spread=spread, rng=rng),
                    "created_at": now,
                    "rerun": False,
                }
                for asset_id in chunk
            ],
        )
    return len(missing)


def _interrupt(
    session: Session, asset_id: int, token: str, now: datetime, note: str
) -> Audit | None:
    """Close a claim as interrupted: the audit is recorded as such and the asset is due again.
    Nothing happens if the claim is no longer `token` (its worker recorded it meanwhile)."""
    row = session.execute(
        select(AssetSchedule.claimed_by, AssetSchedule.claimed_at).where(
            AssetSchedule.asset_id == asset_id, AssetSchedule.claim_token == token
        )
    ).first()
    if row is None:
        return None
    worker, claimed_at = row
    result = session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == asset_id, AssetSchedule.claim_token == token)
        .values(
            claimed_by=None,
            claim_token=None,
            claimed_at=None,
            claim_expires_at=None,
            queued_at=None,
            rerun=False,
            last_audit_at=_dt(now),
            last_outcome=str(AuditOutcome.interrupted),
            last_duration=(now - claimed_at).total_seconds() if claimed_at else None,
            next_due_at=case(
                (AssetSchedule.next_due_at.is_(None), None),
                (AssetSchedule.next_due_at > _dt(now), _dt(now)),
                else_=AssetSchedule.next_due_at,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    started = claimed_at or now
    audit = Audit(
        asset_id=asset_id,
        trigger=TRIGGER,
        actor=(worker or "scheduler")[:64],
        started_at=started,
        finished_at=now,
        duration=max(0.0, (now - started).total_seconds()),
        outcome=AuditOutcome.interrupted,
        probes=[{"probe": "scheduler", "outcome": "failed", "reason": note, "duration": 0.0}],
    )
    session.add(audit)
    return audit


def recover_expired(*, session: Session, now: datetime) -> int:
    """Claims whose worker stopped renewing them (killed, machine gone): mark them interrupted
    and make their assets due again. Commits."""
    statement = (
        select(AssetSchedule.asset_id, AssetSchedule.claim_token)
        .where(AssetSchedule.claim_expires_at < _dt(now))
        .order_by(AssetSchedule.asset_id)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    expired = session.execute(statement).all()
    count = 0
    for asset_id, token in expired:
        if _interrupt(session, asset_id, token, now, "its worker stopped (claim expired)"):
            count += 1
    session.commit()
    return count


def dispatch(
    *, session: Session, now: datetime, rules: Rules, max_running: int, batch_size: int
) -> DispatchResult:
    """Queue the most overdue assets the windows allow, as many as free capacity permits.

    The queue plus the audits running never exceed `max_running` (the global limit on concurrent
    audits): workers only take queued assets. Commits.
    """
    result = DispatchResult()
    allowed = _allowed(rules)
    if not rules.unrestricted:
        # Queued but not yet taken, and a window closed on them since: back to waiting.
        held = select(AssetSchedule.asset_id).join(Asset, Asset.id == AssetSchedule.asset_id)
        held = held.where(
            AssetSchedule.queued_at.is_not(None),
            AssetSchedule.claimed_by.is_(None),
            not_(allowed),
        )
        gone = session.execute(
            update(AssetSchedule)
            .where(AssetSchedule.asset_id.in_(held.scalar_subquery()))
            .where(AssetSchedule.claimed_by.is_(None))
            .values(queued_at=None)
            .execution_options(synchronize_session=False)
        )
        result.unqueued = gone.rowcount or 0  # type: ignore[attr-defined]
    result.running = (
        session.scalar(select(func.count()).where(AssetSchedule.claim_expires_at.is_not(None))) or 0
    )
    waiting = (
        session.scalar(
            select(func.count()).where(
                AssetSchedule.queued_at.is_not(None), AssetSchedule.claimed_by.is_(None)
            )
        )
        or 0
    )
    capacity = min(batch_size, max_running - result.running - waiting)
    if capacity > 0:
        due_ids = session.scalars(
            select(AssetSchedule.asset_id)
            .join(Asset, Asset.id == AssetSchedule.asset_id)
            .where(
                AssetSchedule.next_due_at <= _dt(now),
                AssetSchedule.queued_at.is_(None),
                AssetSchedule.claimed_by.is_(None),
                Asset.archived_at.is_(None),
                allowed,
            )
            .order_by(AssetSchedule.next_due_at, AssetSchedule.asset_id)
            .limit(capacity)
        ).all()
        if due_ids:
            done = session.execute(
                update(AssetSchedule)
                .where(
                    AssetSchedule.asset_id.in_(due_ids),
                    AssetSchedule.queued_at.is_(None),
                    AssetSchedule.claimed_by.is_(None),
                )
                .values(queued_at=_dt(now))
                .execution_options(synchronize_session=False)
            )
            result.queued = done.rowcount or 0  # type: ignore[attr-defined]
    session.commit()
    return result


# --- workers -----------------------------------------------------------------------------------


def claim(
    *, session: Session, worker_id: str, limit: int, now: datetime, claim_seconds: float
) -> list[Claim]:
    """Take up to `limit` queued assets, most overdue first, for this worker. Commits.

    On PostgreSQL the rows are picked with FOR UPDATE SKIP LOCKED, so workers never wait for
    each other nor take the same row; SQLite has one writer at a time, which gives the same.
    """
    if limit <= 0:
        return []
    token = uuid.uuid4().hex
    pick = (
        select(AssetSchedule.asset_id)
        .where(AssetSchedule.queued_at.is_not(None), AssetSchedule.claimed_by.is_(None))
        .order_by(AssetSchedule.next_due_at, AssetSchedule.asset_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    rows = session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id.in_(pick.scalar_subquery()))
        .where(AssetSchedule.claimed_by.is_(None))
        .values(
            claimed_by=worker_id[:128],
            claim_token=token,
            claimed_at=_dt(now),
            claim_expires_at=_dt(now + timedelta(seconds=claim_seconds)),
            rerun=False,
        )
        .returning(AssetSchedule.asset_id)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return [Claim(asset_id=r[0], token=token, claimed_at=now) for r in rows]


def renew(
    *,
    session: Session,
    worker_id: str,
    claims: Sequence[Claim],
    now: datetime,
    claim_seconds: float,
) -> set[int]:
    """Extend this worker's claims; returns the assets whose claim it no longer holds. Commits."""
    if not claims:
        return set()
    kept = set(
        session.scalars(
            update(AssetSchedule)
            .where(
                AssetSchedule.claimed_by == worker_id[:128],
                AssetSchedule.asset_id.in_([c.asset_id for c in claims]),
                AssetSchedule.claim_token.in_({c.token for c in claims}),
            )
            .values(claim_expires_at=_dt(now + timedelta(seconds=claim_seconds)))
            .returning(AssetSchedule.asset_id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    session.commit()
    return {c.asset_id for c in claims} - kept


def _release_values(now: datetime, outcome: str, duration: float, next_due: datetime) -> Any:
    values: dict[str, Any] = {
        "claimed_by": None,
        "claim_token": None,
        "claimed_at": None,
        "claim_expires_at": None,
        "queued_at": None,
        "rerun": False,
        "last_audit_at": _dt(now),
        "last_outcome": outcome,
        "last_duration": duration,
        # Edited during the audit (rerun): due again at once. Archived meanwhile: stays off.
        "next_due_at": case(
            (AssetSchedule.next_due_at.is_(None), None),
            (AssetSchedule.rerun == true(), _dt(now)),
            else_=_dt(next_due),
        ),
    }
    if outcome == AuditOutcome.completed:
        values["last_success_at"] = _dt(now)
    return values


def complete(
    *,
    session: Session,
    claim: Claim,
    report: AuditReport,
    worker_id: str,
    now: datetime,
    settings: Any,
    rng: random.Random,
) -> Audit | None:
    """Record a finished audit and the asset's next due time in one transaction.

    `settings` is the whole Settings (assets for the interval, scheduler for retry and jitter).
    Returns None, writing nothing, when the claim was lost meanwhile (it expired and the audit was
    already marked interrupted): each due time gets exactly one recorded outcome.
    """
    from inventory.services.audits import record_audit

    asset = session.get(Asset, claim.asset_id)
    if asset is None:
        session.rollback()
        return None
    outcome = AuditOutcome.completed if report.reachable else AuditOutcome.unreachable
    next_due = due.next_due(
        now,
        outcome=outcome,
        interval=interval_of(asset, settings.assets),
        settings=settings.scheduler,
        rng=rng,
    )
    result = session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == claim.asset_id, AssetSchedule.claim_token == claim.token)
        .values(_release_values(now, str(outcome), report.duration, next_due))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    if outcome == AuditOutcome.completed:
        from inventory.services.stale import fix_stale

        fix_stale(session, [claim.asset_id], now, f"audit by {worker_id}"[:64])
    from inventory.services.vulns import options_from

    # record_audit commits: the schedule row, the audit and its findings together.
    return record_audit(
        session=session,
        asset_id=claim.asset_id,
        report=report,
        actor=worker_id,
        trigger=TRIGGER,
        now=now,
        vulns=options_from(settings),
    )


def fail(
    *,
    session: Session,
    claim: Claim,
    reason: str,
    worker_id: str,
    now: datetime,
    settings: Any,
) -> Audit | None:
    """An audit that broke before it could be recorded: record it failed, retry later. Commits."""
    asset = session.get(Asset, claim.asset_id)
    interval = interval_of(asset, settings.assets) if asset else 86_400
    next_due = now + timedelta(seconds=min(float(interval), settings.scheduler.retry_after))
    duration = max(0.0, (now - claim.claimed_at).total_seconds())
    result = session.execute(
        update(AssetSchedule)
        .where(AssetSchedule.asset_id == claim.asset_id, AssetSchedule.claim_token == claim.token)
        .values(_release_values(now, str(AuditOutcome.failed), duration, next_due))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    audit = Audit(
        asset_id=claim.asset_id,
        trigger=TRIGGER,
        actor=worker_id[:64],
        started_at=claim.claimed_at,
        finished_at=now,
        duration=duration,
        outcome=AuditOutcome.failed,
        probes=[{"probe": "scheduler", "outcome": "failed", "reason": reason[:300]}],
    )
    session.add(audit)
    session.commit()
    return audit


def interrupt(*, session: Session, claims: Sequence[Claim], now: datetime, note: str) -> int:
    """Mark these claims' audits interrupted (a worker shutting down). Commits."""
    count = sum(
        1 for c in claims if _interrupt(session, c.asset_id, c.token, now, note) is not None
    )
    session.commit()
    return count


def interrupt_worker(*, session: Session, worker_id: str, now: datetime) -> int:
    """A worker restarted under the same id: what its previous life held was interrupted."""
    held = session.execute(
        select(AssetSchedule.asset_id, AssetSchedule.claim_token).where(
            AssetSchedule.claimed_by == worker_id[:128]
        )
    ).all()
    count = sum(
        1
        for asset_id, token in held
        if _interrupt(session, asset_id, token, now, "its worker restarted") is not None
    )
    session.commit()
    return count


def pending(*, session: Session, now: datetime, rules: Rules) -> int:
    """Audits waiting now: queued, or due and allowed by the windows (or never scheduled)."""
    queued_or_due = (
        select(func.count())
        .select_from(AssetSchedule)
        .join(Asset, Asset.id == AssetSchedule.asset_id)
        .where(
            AssetSchedule.claimed_by.is_(None),
            Asset.archived_at.is_(None),
            or_(
                AssetSchedule.queued_at.is_not(None),
                and_(AssetSchedule.next_due_at <= _dt(now), _allowed(rules)),
            ),
        )
    )
    unscheduled = (
        select(func.count())
        .select_from(Asset)
        .outerjoin(AssetSchedule, AssetSchedule.asset_id == Asset.id)
        .where(AssetSchedule.asset_id.is_(None), Asset.archived_at.is_(None))
    )
    return int(session.scalar(queued_or_due) or 0) + int(session.scalar(unscheduled) or 0)


# --- the schedule page --------------------------------------------------------------------------


@dataclass
class Overview:
    """What the schedule page shows; rows are (AssetSchedule, Asset) unless said otherwise."""

    now: datetime
    lease: Any = None
    workers: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    running: list[tuple[AssetSchedule, Asset]] = field(default_factory=list)
    overdue: list[tuple[AssetSchedule, Asset]] = field(default_factory=list)
    overdue_total: int = 0
    unscheduled: int = 0
    due_next: list[tuple[AssetSchedule, Asset]] = field(default_factory=list)
    last_runs: list[tuple[Audit, Asset]] = field(default_factory=list)
    stale: list[tuple[Any, Asset]] = field(default_factory=list)  # (Finding, Asset)
    stale_total: int = 0

    @property
    def stale_ids(self) -> set[int]:
        return {asset.id for _, asset in self.stale if asset.id is not None}

    @property
    def scheduler_active(self) -> bool:
        return self.lease is not None and self.lease.expires_at > self.now


def overview(*, session: Session, now: datetime, limit: int = 50) -> Overview:
    from inventory.models import JobStatus, SchedulerLease, SchedulerWorker
    from inventory.services.stale import STALE

    page = Overview(now=now)
    page.lease = session.get(SchedulerLease, "scheduler")
    page.workers = list(
        session.scalars(
            select(SchedulerWorker).order_by(SchedulerWorker.last_seen_at.desc()).limit(20)
        ).all()
    )
    page.jobs = list(session.scalars(select(JobStatus).order_by(JobStatus.job_id)).all())
    both = select(AssetSchedule, Asset).join(Asset, Asset.id == AssetSchedule.asset_id)
    live = Asset.archived_at.is_(None)
    page.running = [
        (s, a)
        for s, a in session.execute(
            both.where(AssetSchedule.claimed_by.is_not(None)).order_by(AssetSchedule.claimed_at)
        ).all()
    ]
    waiting = and_(live, AssetSchedule.claimed_by.is_(None), AssetSchedule.next_due_at <= _dt(now))
    page.overdue = [
        (s, a)
        for s, a in session.execute(
            both.where(waiting)
            .order_by(AssetSchedule.next_due_at, AssetSchedule.asset_id)
            .limit(limit)
        ).all()
    ]
    page.overdue_total = int(
        session.scalar(
            select(func.count())
            .select_from(AssetSchedule)
            .join(Asset, Asset.id == AssetSchedule.asset_id)
            .where(waiting)
        )
        or 0
    )
    page.unscheduled = int(
        session.scalar(
            select(func.count())
            .select_from(Asset)
            .outerjoin(AssetSchedule, AssetSchedule.asset_id == Asset.id)
            .where(AssetSchedule.asset_id.is_(None), live)
        )
        or 0
    )
    page.due_next = [
        (s, a)
        for s, a in session.execute(
            both.where(
                live, AssetSchedule.claimed_by.is_(None), AssetSchedule.next_due_at > _dt(now)
            )
            .order_by(AssetSchedule.next_due_at, AssetSchedule.asset_id)
            .limit(limit)
        ).all()
    ]
    page.last_runs = [
        (audit, asset)
        for audit, asset in session.execute(
            select(Audit, Asset)
            .join(Asset, Asset.id == Audit.asset_id)
            .order_by(Audit.finished_at.desc(), Audit.id.desc())
            .limit(limit)
        ).all()
    ]
    stale = (
        select(Finding, Asset)
        .join(Asset, Asset.id == Finding.asset_id)
        .where(
            Finding.check_id == STALE,
            Finding.status.in_(["open", "reopened"]),
            live,
        )
    )
    page.stale = [
        (f, a) for f, a in session.execute(stale.order_by(Finding.first_seen).limit(limit))
    ]
    page.stale_total = int(session.scalar(select(func.count()).select_from(stale.subquery())) or 0)
    return page
