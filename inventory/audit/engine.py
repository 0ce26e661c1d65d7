"""Runs the probes for one target: scope guard first, then the port stage, then the others.

Every network step has a timeout, the whole audit has a deadline, and a probe that breaks (or
meets a hostile peer) yields a failed result with its reason while the others go on.

`audit_many` audits many targets in one event loop under one set of connection limits (the
scheduler's and the sensor's entry point); reports come out as audits finish, so memory follows
the number of audits under way, not the number of targets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from inventory.audit.probes import Probe
from inventory.audit.probes.base import (
    ConnectionLimits,
    Connector,
    FindingCandidate,
    PortState,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    ServiceObservation,
    Target,
)
from inventory.audit.probes.tcp import PortScan
from inventory.audit.scope import AuditScope

OUT_OF_SCOPE = "audit.out-of-scope"


@dataclass
class AuditReport:
    """Everything one audit learnt; plain data, ready to be stored by the services layer."""

    target: str
    started_at: datetime
    duration: float = 0.0
    results: list[ProbeResult] = field(default_factory=list)

    @property
    def services(self) -> list[ServiceObservation]:
        return [s for r in self.results for s in r.services]

    @property
    def findings(self) -> list[FindingCandidate]:
        return [f for r in self.results for f in r.findings]

    @property
    def reachable(self) -> bool:
        """False when no address answered at all: such an audit must change no finding."""
        return any(s.state is not PortState.filtered for s in self.services)

    @property
    def answering_addresses(self) -> set[str]:
        """Addresses that answered on some port: only their findings can be judged fixed."""
        return {s.address for s in self.services if s.state is not PortState.filtered}

    @property
    def checks_run(self) -> set[str]:
        return {c for r in self.results if r.outcome is ProbeOutcome.ran for c in r.checks}


@lru_cache(maxsize=8)
def _scope(networks: tuple[str, ...]) -> AuditScope:
    """Built once per scope: an IPSet costs more than a whole port stage on loopback."""
    return AuditScope(networks)


def _out_of_scope(address: str) -> FindingCandidate:
    return FindingCandidate(
        check=OUT_OF_SCOPE,
        severity="info",
        address=address,
        port=None,
        title=f"{address} is outside the audit scope and was not probed",
        remediation=(
            "Check the address. If Vigie should audit it, add its network to the audit scope "
            "([audit] scope in the configuration)."
        ),
    )


async def _guarded(probe: Probe, target: Target, ctx: ProbeContext) -> ProbeResult:
    started = time.monotonic()
    try:
        result = await probe.check(target, ctx)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken probe must not stop the audit
        result = ProbeResult(
            probe.name, ProbeOutcome.failed, reason=f"{exc.__class__.__name__}: {exc}"[:300]
        )
    result.duration = result.duration or time.monotonic() - started
    return result


async def audit(
    target: Target,
    settings: Any,
    *,
    connector: Connector | None = None,
    probes: list[str] | None = None,
    limits: ConnectionLimits | None = None,
) -> AuditReport:
    """Audit one target with the [audit] settings; `probes` limits which ones run (names).
    `limits` shares connection limits with other audits in the same loop (audit_many)."""
    report = AuditReport(target=target.name, started_at=datetime.now(UTC))
    started = time.monotonic()
    inside, outside = _scope(tuple(settings.scope)).split(target.addresses)
    scope_result = ProbeResult(
        "scope",
        ProbeOutcome.ran,
        findings=[_out_of_scope(str(a)) for a in outside],
        checks={OUT_OF_SCOPE},
    )
    report.results.append(scope_result)
    if not inside:
        report.duration = time.monotonic() - started
        return report

    ctx = ProbeContext.from_settings(settings, connector, limits)
    narrowed = replace(target, addresses=tuple(inside))
    wanted = [
        name
        for name in Probe.registry
        if name != PortScan.name and (probes is None or name in probes)
    ]
    pending = [PortScan.name, *wanted]
    try:
        async with asyncio.timeout(settings.audit_deadline):
            port_stage = await _guarded(PortScan(), narrowed, ctx)
            report.results.append(port_stage)
            pending.remove(PortScan.name)
            ctx.observed = list(port_stage.services)
            others = await asyncio.gather(
                *(_guarded(Probe.registry[n](), narrowed, ctx) for n in wanted)
            )
            report.results.extend(others)
            pending.clear()
    except TimeoutError:
        done = {r.probe for r in report.results}
        report.results.extend(
            ProbeResult(name, ProbeOutcome.failed, reason="the audit deadline was reached")
            for name in pending
            if name not in done
        )
    report.duration = time.monotonic() - started
    return report


def run_audit(target: Target, settings: Any, **kwargs: Any) -> AuditReport:
    """Synchronous entry point (CLI, workers)."""
    return asyncio.run(audit(target, settings, **kwargs))


def default_concurrency(settings: Any) -> int:
    """Audits under way at once, at most: a quarter of the connections allowed (64 with the
    default 256), and never fewer than 64 (nor than the connections allowed when that is less).
    Each audit under way costs about 0.3 MB (its probes' clients and buffers), so
    this is what bounds memory: measured at 1,000 loopback hosts, 1,024 audits at once peaked
    at 380 MB, 256 at 210 MB, for the same time (the CPU is what limits them on a LAN, the
    connection limit on a WAN, where each port stage holds up to max_connections_per_host
    connections for connect_timeout)."""
    connections = max(1, settings.max_connections)
    return max(min(connections, 64), connections // 4)


ADMIT_EVERY = 0.02  # seconds between two looks at the spare connections


async def audit_many(
    targets: Iterable[Target],
    settings: Any,
    *,
    connector: Connector | None = None,
    probes: list[str] | None = None,
    concurrency: int | None = None,
) -> AsyncIterator[AuditReport]:
    """Audit every target, at most `concurrency` at a time, under one global and per-host
    connection limit (max_connections, max_connections_per_host); yields each report as its
    audit ends.

    A new audit starts only while connections are spare (admission control): a port stage
    opens up to max_connections_per_host connections per address at once, so a few hundred
    audits in their port stage fill the limit, and any more would only queue for a slot
    (thousands of connections waiting cost more CPU than the connections themselves, and their
    memory); audits past their port stage hold one connection or none, so others start beside
    them, up to `concurrency`. Spare connections are looked at as audits end and every
    ADMIT_EVERY seconds.

    Targets are taken from the iterable only when an audit can start, so a generator over
    100,000 assets costs memory for the audits under way only. Each audit keeps its own
    deadline: a target that hangs costs its slot until audit_deadline, never the others'.
    Blocking probe libraries (pynetdicom) run in the loop's default executor: a caller auditing
    thousands of DICOM hosts gives it enough threads (see run_many).
    """
    limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_host)
    width = concurrency or default_concurrency(settings)
    default_ports = set(settings.default_ports)
    pending = iter(targets)
    finished: asyncio.Queue[asyncio.Task[AuditReport]] = asyncio.Queue()
    running: set[asyncio.Task[AuditReport]] = set()
    exhausted = False

    def demand(target: Target) -> int:
        """Connections the target's port stage opens at once (PortScan's workers)."""
        ports = default_ports | {s.port for s in target.services if s.protocol == "tcp"}
        per_address = min(len(ports), settings.max_connections_per_host)
        return max(1, per_address * len(target.addresses))

    def admit(room: int) -> None:
        """Start audits while fewer than `width` run, until they would use `room` connections
        (the audits just started have not opened theirs yet: limits.spare does not know)."""
        nonlocal exhausted
        while not exhausted and len(running) < width and room > 0:
            target = next(pending, None)
            if target is None:
                exhausted = True
                return
            room -= demand(target)
            task = asyncio.create_task(
                audit(target, settings, connector=connector, probes=probes, limits=limits)
            )
            running.add(task)
            task.add_done_callback(finished.put_nowait)

    try:
        admit(settings.max_connections)
        while running:
            try:
                async with asyncio.timeout(None if exhausted else ADMIT_EVERY):
                    task = await finished.get()
            except TimeoutError:  # no audit ended: room for more? (those started are running)
                admit(limits.spare)
                continue
            running.discard(task)
            admit(max(limits.spare, 0 if running else 1))
            yield task.result()  # after starting more: the consumer's time overlaps audits
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def run_many(
    targets: Iterable[Target], settings: Any, *, threads: int = 64, **kwargs: Any
) -> list[AuditReport]:
    """Synchronous audit_many (CLI, benchmarks): its own event loop, with `threads` worker
    threads for blocking probe libraries, and every report in a list."""

    async def collect() -> list[AuditReport]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
        return [report async for report in audit_many(targets, settings, **kwargs)]

    return asyncio.run(collect())
