"""When an asset is due: pure functions of the clock, the asset's interval and the settings.

- A new asset (or one whose addresses or services changed) is due at once, spread over
  `first_audit_spread` seconds so that a large import does not fire in one second.
- After a completed audit it is due one interval later, up to `jitter` of the interval early,
  so assets added together drift apart (early rather than late: never stale because of jitter).
- After an audit that got no answer or failed, it is tried again after `retry_after` (at most
  its interval); after an interrupted audit it is due again at once.
- An asset is stale when not audited successfully for twice its interval (`audit.stale`).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from inventory.models import AuditOutcome


def first_due(now: datetime, *, spread: float, rng: random.Random) -> datetime:
    return now + timedelta(seconds=spread * rng.random())


def next_due(
    finished: datetime, *, outcome: str, interval: int, settings: Any, rng: random.Random
) -> datetime:
    """The next due time after an audit that ended at `finished` ([scheduler] settings)."""
    if outcome == AuditOutcome.completed:
        early = interval * settings.jitter * rng.random()
        return finished + timedelta(seconds=interval - early)
    if outcome == AuditOutcome.interrupted:
        return finished
    return finished + timedelta(seconds=min(float(interval), settings.retry_after))


def stale_since(reference: datetime, interval: int) -> datetime:
    """The moment an asset last audited successfully at `reference` becomes stale."""
    return reference + timedelta(seconds=2 * interval)


def is_stale(now: datetime, *, reference: datetime, interval: int) -> bool:
    return now > stale_since(reference, interval)
