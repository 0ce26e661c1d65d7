"""The port stage: which TCP ports answer, and what their greeting says.

Every address of the target is tried on its declared services plus the default port list, within
the context's limits. An open port that the asset does not declare, and that its zone's policy does
not allow, is `port.unexpected-open`.
"""

from __future__ import annotations

import asyncio
import time

from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    ServiceObservation,
    Target,
    printable,
)
from inventory.audit.probes.fingerprint import identify

UNEXPECTED_OPEN = "port.unexpected-open"
GREETING_WAIT = 1.0  # seconds


class PortScan(Probe):
    name = "tcp"

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        ports = sorted(
            {s.port for s in target.services if s.protocol == "tcp"} | set(ctx.default_ports)
        )
        jobs = [
            self._probe_port(str(address), port, target, ctx)
            for address in target.addresses
            for port in ports
        ]
        services = list(await asyncio.gather(*jobs))
        findings = [
            FindingCandidate(
                check=UNEXPECTED_OPEN,
                severity=target.unexpected_severity,
                address=s.address,
                port=s.port,
                title=f"Port {s.port}/tcp ({s.service or 'unknown service'}) is open, not expected",
                remediation=(
                    "Close this port at the firewall or disable the service if it is not needed; "
                    "if it is needed, add it to the asset's expected services."
                ),
                evidence={"service": s.service, "banner": s.banner},
            )
            for s in services
            if s.state is PortState.open and not target.allows(s.port)
        ]
        return ProbeResult(
            probe=self.name,
            outcome=ProbeOutcome.ran,
            services=services,
            findings=findings,
            checks={UNEXPECTED_OPEN},
            duration=time.monotonic() - started,
        )

    async def _probe_port(
        self, address: str, port: int, target: Target, ctx: ProbeContext
    ) -> ServiceObservation:
        try:
            async with ctx.connect(address, port) as (reader, _writer):
                # Services that speak first do so at once; the others (HTTP, Redis) wait for us.
                greeting = await ctx.read_some(reader, timeout=min(ctx.read_timeout, GREETING_WAIT))
        except ConnectionRefusedError:
            return ServiceObservation(address, port, PortState.closed)
        except (TimeoutError, OSError):
            return ServiceObservation(address, port, PortState.filtered)
        declared = next((s.name for s in target.services if s.port == port and s.name), "")
        return ServiceObservation(
            address,
            port,
            PortState.open,
            service=declared or identify(port, greeting),
            banner=printable(greeting),
        )
