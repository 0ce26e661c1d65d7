"""Small helpers shared by the protocol probes (FTP, Redis, Elasticsearch, MongoDB).

Bounded reads on top of `ProbeContext.read_some`, the choice of ports from the port stage, and the
per-port run that turns a hostile peer into a "failed: reason" instead of a hang or a crash.
No Probe lives here, so importing it registers nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    ServiceObservation,
)
from inventory.i18n import N_

MAX_NAMES = 20  # database / index names kept as evidence, at most
# "No such service here" reasons, whole sentences so that pages can translate them.
NO_SERVICE = {
    "FTP": N_("no FTP service was seen"),
    "Redis": N_("no Redis service was seen"),
    "Elasticsearch": N_("no Elasticsearch service was seen"),
    "MongoDB": N_("no MongoDB service was seen"),
    "SMB": N_("no SMB service was seen"),
}


class ProtocolError(Exception):
    """The peer did not speak the protocol we expected (or said too much, or nothing)."""


class Buffered:
    """A byte buffer over a stream: every read is bounded in time (one read timeout per line or
    message, whatever a dripping peer does) and never goes beyond `cap` bytes in all."""

    def __init__(self, ctx: ProbeContext, reader: asyncio.StreamReader, cap: int = 65536) -> None:
        self.ctx = ctx
        self.reader = reader
        self.cap = cap
        self.buffer = b""
        self.total = 0

    async def _fill(self, deadline: float) -> bool:
        room = self.cap - self.total
        if room <= 0:
            raise ProtocolError(f"the peer sent more than {self.cap} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolError("the peer is too slow")
        # Like ctx.read_some (bounded in time and bytes) but returns as soon as bytes come:
        # binary protocols have no line end to wait for.
        try:
            chunk = await asyncio.wait_for(self.reader.read(min(room, 65536)), timeout=remaining)
        except TimeoutError:
            raise ProtocolError("the peer is too slow" if self.total else "no answer") from None
        except (ConnectionError, OSError):
            chunk = b""
        self.total += len(chunk)
        self.buffer += chunk
        return bool(chunk)

    def _deadline(self, size: int = 0) -> float:
        """A whole line, or message of `size` bytes, gets one read timeout (plus one per 64 KiB):
        a peer that drips a byte at a time cannot stretch it."""
        return time.monotonic() + self.ctx.read_timeout * (1 + size // 65536)

    async def line(self, patience: float = 1.0) -> bytes:
        """One line, without its line end; `patience` scales the time it may take (a server
        that delays a refused login on purpose)."""
        deadline = time.monotonic() + self.ctx.read_timeout * patience
        while b"\n" not in self.buffer:
            if not await self._fill(deadline):
                raise ProtocolError("the peer stopped answering" if self.total else "no answer")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    async def exactly(self, size: int) -> bytes:
        deadline = self._deadline(size)
        while len(self.buffer) < size:
            if not await self._fill(deadline):
                raise ProtocolError("the answer was cut short")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    async def rest(self) -> tuple[bytes, bool]:
        """What comes until the peer closes or the cap; True when the cap (of bytes or of time)
        cut it."""
        deadline = self._deadline(self.cap)
        try:
            while await self._fill(deadline):
                pass
        except ProtocolError:
            data, self.buffer = self.buffer, b""
            return data, True
        data, self.buffer = self.buffer, b""
        return data, False


def ports_for(ctx: ProbeContext, names: Iterable[str]) -> list[tuple[str, int]]:
    """(address, port) of the open ports whose service (declared or identified) is one of
    `names`."""
    wanted = set(names)
    return sorted(
        {
            (s.address, s.port)
            for s in ctx.observed
            if s.state is PortState.open and s.service.lower() in wanted
        }
    )


PortCheck = Callable[[str, int], Awaitable[tuple[list[ServiceObservation], list[FindingCandidate]]]]


async def run_on_ports(
    probe: str,
    label: str,
    checks: set[str],
    ports: list[tuple[str, int]],
    check_port: PortCheck,
    budget: float,
) -> ProbeResult:
    """Runs `check_port` on every port within `budget` seconds each.

    The probe has run (and its checks were evaluated) only when every exchange happened: a port
    that failed could hide a weakness seen before, which must not be judged fixed.
    """
    started = time.monotonic()
    if not ports:
        # The port stage saw no such service on an address that answered: what such a service
        # showed before no longer holds (anonymous FTP switched off is fixed). Unreachable
        # assets are protected by the engine, which then judges no check at all.
        return ProbeResult(
            probe,
            ProbeOutcome.ran,
            reason=NO_SERVICE.get(label, f"no {label} service was seen"),
            checks=set(checks),
        )

    async def one(
        address: str, port: int
    ) -> tuple[list[ServiceObservation], list[FindingCandidate]] | str:
        try:
            async with asyncio.timeout(budget):
                return await check_port(address, port)
        except TimeoutError:
            return f"{address}:{port}: the {label} exchange took too long"
        except ProtocolError as exc:
            return f"{address}:{port}: {exc}"
        except (OSError, EOFError, ValueError, UnicodeError) as exc:
            return f"{address}:{port}: {exc.__class__.__name__}: {exc}"[:200]

    outcomes = await asyncio.gather(*(one(a, p) for a, p in ports))
    result = ProbeResult(probe, ProbeOutcome.ran)
    failures = []
    for outcome in outcomes:
        if isinstance(outcome, str):
            failures.append(outcome)
        else:
            result.services.extend(outcome[0])
            result.findings.extend(outcome[1])
    if failures:
        result.outcome = ProbeOutcome.failed
        result.reason = "; ".join(failures)[:300]
    else:
        result.checks = set(checks)
    result.duration = time.monotonic() - started
    return result
