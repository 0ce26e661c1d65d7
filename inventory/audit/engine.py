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
    """Audits under way at once: as many as connections allowed. Each needs one connection to
    make progress, and those beyond what the limits allow just wait their turn, at little cost
    (a few kilobytes each)."""
    return max(1, settings.max_connections)


async def audit_many(
    targets: Iterable[Target],
    settings: Any,
    *,
    connector: Connector | None = None,
    probes: list[str] | None = None,
    concurrency: int | None = None,
) -> AsyncIterator[AuditReport]:
    """Audit every target, `concurrency` at a time, under one global and per-host connection
    limit (max_connections, max_connections_per_host); yields each report as its audit ends.

    Targets are taken from the iterable only when an audit can start, so a generator over
    100,000 assets costs memory for the audits under way only. Each audit keeps its own
    deadline: a target that hangs costs its slot until audit_deadline, never the others'.
    Blocking probe libraries (pynetdicom) run in the loop's default executor: a caller auditing
    thousands of DICOM hosts gives it enough threads (see run_many).
    """
    limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_host)
    width = concurrency or default_concurrency(settings)
    pending = iter(targets)
    finished: asyncio.Queue[asyncio.Task[AuditReport]] = asyncio.Queue()
    running: set[asyncio.Task[AuditReport]] = set()

    def start_next() -> None:
        target = next(pending, None)
        if target is None:
            return
        task = asyncio.create_task(
            audit(target, settings, connector=connector, probes=probes, limits=limits)
        )
        running.add(task)
        task.add_done_callback(finished.put_nowait)

    try:
        for _ in range(width):
            start_next()
        while running:
            task = await finished.get()
            running.discard(task)
            start_next()  # before handing the report over: the consumer's time overlaps audits
            yield task.result()
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
