"""`audit.stale`: an asset not audited successfully for twice its interval (PRODUCT.md).

One finding per asset (subject "asset"), raised, reopened and fixed by the scheduler with the same
lifecycle and event history as the probes' findings. An asset never audited successfully counts
from when it was first scheduled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from inventory.models import (
    Asset,
    AssetAddress,
    AssetSchedule,
    Finding,
    FindingEvent,
    FindingStatus,
    Severity,
)
from inventory.services.schedule import _dt, interval_expression
from inventory.settings import AssetSettings

STALE = "audit.stale"
STALE_SUBJECT = "asset"
STALE_TITLE = "Not audited successfully for more than twice its audit interval"
STALE_REMEDIATION = (
    "Find out why the scheduled audits of this asset do not complete: is the scheduler running "
    "(schedule page), is the asset switched on and reachable from Vigie, has its address changed? "
    "Fix that, or archive the asset if it is gone."
)


def _stale_ids(session: Session, now: datetime, defaults: AssetSettings) -> set[int]:
    interval = interval_expression(defaults)
    reference = func.coalesce(AssetSchedule.last_success_at, AssetSchedule.created_at)
    live = (
        select(AssetSchedule.asset_id)
        .join(Asset, Asset.id == AssetSchedule.asset_id)
        .where(Asset.archived_at.is_(None))
    )
    stale: set[int] = set()
    # Date arithmetic per row is not portable; the distinct intervals are few, so one query each.
    for seconds in session.scalars(
        select(interval).select_from(Asset).where(Asset.archived_at.is_(None)).distinct()
    ).all():
        cutoff = now - timedelta(seconds=2 * int(seconds))
        stale.update(
            session.scalars(live.where(interval == seconds, reference < _dt(cutoff))).all()
        )
    return stale


def _event(
    finding: Finding, who: str, new: FindingStatus, now: datetime, note: str
) -> FindingEvent:
    event = FindingEvent(
        finding_id=finding.id,
        at=now,
        actor=who,
        old_status=str(finding.status),
        new_status=str(new),
        note=note,
    )
    finding.status = new
    return event


def fix_stale(session: Session, asset_ids: Sequence[int], now: datetime, who: str) -> int:
    active = (FindingStatus.open, FindingStatus.reopened, FindingStatus.accepted)
    fixed = 0
    for finding in session.scalars(
        select(Finding).where(
            Finding.check_id == STALE,
            Finding.asset_id.in_(asset_ids),
            Finding.status.in_([str(s) for s in active]),
        )
    ):
        finding.fixed_at = now
        session.add(_event(finding, who, FindingStatus.fixed, now, "audited successfully again"))
        fixed += 1
    return fixed


def check_stale(*, session: Session, now: datetime, defaults: AssetSettings) -> tuple[int, int]:
    """Raise `audit.stale` on assets not audited successfully for twice their interval, and fix
    it where a successful audit came since. Returns (raised or reopened, fixed). Commits."""
    who = "scheduler"
    stale = _stale_ids(session, now, defaults)
    existing = {
        f.asset_id: f
        for f in session.scalars(
            select(Finding).where(Finding.check_id == STALE, Finding.subject == STALE_SUBJECT)
        )
    }
    raised = 0
    new_ids = [i for i in stale if i not in existing]
    first_address: dict[int, Any] = (
        dict(
            session.execute(
                select(AssetAddress.asset_id, func.min(AssetAddress.address))
                .where(AssetAddress.asset_id.in_(new_ids), AssetAddress.position == 0)
                .group_by(AssetAddress.asset_id)
            ).all()
        )
        if new_ids
        else {}
    )
    for asset_id in sorted(stale):
        finding = existing.get(asset_id)
        if finding is None:
            finding = Finding(
                asset_id=asset_id,
                check_id=STALE,
                subject=STALE_SUBJECT,
                address=str(first_address.get(asset_id, "") or ""),
                port=None,
                severity=Severity.medium,
                title=STALE_TITLE,
                remediation=STALE_REMEDIATION,
                evidence={},
                status=FindingStatus.open,
                first_seen=now,
                last_seen=now,
            )
            session.add(finding)
            session.flush()
            session.add(
                FindingEvent(
                    finding_id=finding.id, at=now, actor=who, old_status=None, new_status="open"
                )
            )
            raised += 1
        elif finding.status == FindingStatus.fixed:
            finding.fixed_at = None
            finding.last_seen = now
            session.add(_event(finding, who, FindingStatus.reopened, now, "stale again"))
            raised += 1
        else:
            finding.last_seen = now
    no_longer = [a for a, f in existing.items() if a not in stale and f.status != "fixed"]
    archived = (
        set(
            session.scalars(
                select(Asset.id).where(Asset.id.in_(no_longer), Asset.archived_at.is_not(None))
            ).all()
        )
        if no_longer
        else set()
    )
    fixed = fix_stale(session, [a for a in no_longer if a not in archived], now, who)
    session.commit()
    return raised, fixed
