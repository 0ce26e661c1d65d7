"""Time, injected: the scheduler asks a Clock, so tests move time forward instead of sleeping."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never jumps (rate limits, timeouts)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class ManualClock:
    """A clock that moves only when told to (tests, benchmarks)."""

    current: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    elapsed: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        with self._lock:
            return self.current

    def monotonic(self) -> float:
        with self._lock:
            return self.elapsed

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self.current += timedelta(seconds=seconds)
            self.elapsed += seconds
            return self.current

    def set(self, when: datetime) -> None:
        assert when.tzinfo is not None, "the clock keeps aware datetimes"
        with self._lock:
            self.elapsed += (when - self.current).total_seconds()
            self.current = when.astimezone(UTC)


def new_random(seed: int | None = None) -> random.Random:
    """The source of jitter; tests pass a seed so that spreads are reproducible."""
    return random.Random(seed)
