"""Exactly one active scheduler per database: a lease row with an expiry, renewed by its holder.

A standby tries to take the lease every third of a lease period; the holder renews it as often.
When the holder dies (even by SIGKILL) its lease runs out, and a standby holds it within
lease_seconds + lease_seconds / 3, well inside two lease periods. Times come from the caller's
clock; machines sharing a database keep their clocks in sync (NTP), as for any lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, case, delete, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from inventory.models import SchedulerLease
from inventory.models.types import UTCDateTime

SCHEDULER = "scheduler"
# The table itself: its columns type-check as SQL expressions (the model's attributes do not).
LEASE: Table = SchedulerLease.__table__  # type: ignore[attr-defined]


def acquire(
    *, session: Session, holder: str, now: datetime, seconds: float, name: str = SCHEDULER
) -> bool:
    """Take or renew the lease; True when `holder` has it until now + seconds. Commits."""
    until = now + timedelta(seconds=seconds)
    at = literal(now, UTCDateTime())
    result = session.execute(
        update(LEASE)
        .where(
            LEASE.c.name == name,
            or_(LEASE.c.holder == holder, LEASE.c.expires_at < at),
        )
        .values(
            acquired_at=case((LEASE.c.holder == holder, LEASE.c.acquired_at), else_=at),
            holder=holder,
            renewed_at=at,
            expires_at=literal(until, UTCDateTime()),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        session.commit()
        return True
    exists = session.scalar(select(LEASE.c.name).where(LEASE.c.name == name))
    if exists:
        session.commit()
        return False
    try:
        session.add(
            SchedulerLease(
                name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=until
            )
        )
        session.commit()
    except IntegrityError:  # another scheduler created it first
        session.rollback()
        return False
    return True


def release(*, session: Session, holder: str, name: str = SCHEDULER) -> None:
    """Give the lease up (clean shutdown), so a standby takes over at once. Commits."""
    session.execute(delete(LEASE).where(LEASE.c.name == name, LEASE.c.holder == holder))
    session.commit()


def current(*, session: Session, name: str = SCHEDULER) -> SchedulerLease | None:
    return session.get(SchedulerLease, name)
