"""Runs the probes for one target: scope guard first, then the port stage, then the others.

Every network step has a timeout, the whole audit has a deadline, and a probe that breaks (or
meets a hostile peer) yields a failed result with its reason while the others go on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from inventory.audit.probes import Probe
from inventory.audit.probes.base import (
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
) -> AuditReport:
    """Audit one target with the [audit] settings; `probes` limits which ones run (names)."""
    report = AuditReport(target=target.name, started_at=datetime.now(UTC))
    started = time.monotonic()
    inside, outside = AuditScope(settings.scope).split(target.addresses)
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

    ctx = ProbeContext.from_settings(settings, connector)
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
