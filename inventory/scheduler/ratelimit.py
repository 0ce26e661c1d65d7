"""Pacing of new connections: audits start no faster than their connections may be opened.

A generic cell rate algorithm (GCRA) over connection counts: each audit reserves the connections
it is about to open (its addresses times its ports); it may start at once while the budget allows
a one-second burst, otherwise it waits its turn. Over any span of T seconds at most
rate x (T + 1) connections are started, plus one audit's worth. The wait is taken before the
audit starts, never inside a connection attempt, so it cannot be mistaken for a silent port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from inventory.scheduler.clock import SystemClock


class ConnectionPacer:
    def __init__(
        self,
        rate: float,
        *,
        burst_seconds: float = 1.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst_seconds
        self._monotonic = monotonic or SystemClock().monotonic
        self._tat = float("-inf")  # theoretical arrival time of the next connection
        self._lock = threading.Lock()

    def reserve(self, connections: int) -> float:
        """Book `connections` new connections; returns the seconds to wait before opening them."""
        cost = max(1, connections) / self.rate
        with self._lock:
            now = self._monotonic()
            tat = max(self._tat, now)
            start = max(now, tat - self.burst)
            self._tat = tat + cost
            return start - now


def connection_cost(addresses: int, default_ports: Iterable[int], declared: Iterable[int]) -> int:
    """Connections an audit's port stage opens: every address times every port tried."""
    ports = set(default_ports) | set(declared)
    return max(1, addresses * max(1, len(ports)))
