"""The port stage: which TCP ports answer, and what their greeting says.

Every address of the target is tried on its declared services plus the default port list, within
the context's limits. An open port that the asset does not declare, and that its zone's policy does
not allow, is `port.unexpected-open`.

Cheap enough for thousands of hosts in one event loop: each address gets at most
max_connections_per_host workers (not one task per port), each port a bare socket
(`ProbeContext.knock`), and an open port is read only as long as its service may still greet.
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
from inventory.audit.probes.fingerprint import WELL_KNOWN, identify

UNEXPECTED_OPEN = "port.unexpected-open"
GREETING_WAIT = 1.0  # seconds: services that speak first (FTP, SSH, telnet, VNC) do so at once
# On a port whose usual service waits for the client (HTTP, DICOM, databases, SMB, RDP), a greeting
# would only come from something unusual there (FTP on 8080): a short wait, a few round trips
# (the connect's own time) and at least QUIET_WAIT, catches a prompt one without making every web
# server cost a whole GREETING_WAIT.
QUIET_WAIT = 0.1
QUIET_ROUND_TRIPS = 4
CLIENT_FIRST = frozenset(
    {"http", "https", "dicom", "dicom-iscl", "dicom-tls", "redis", "elasticsearch", "mongodb",
     "smb", "netbios-ssn", "rdp"}
)  # fmt: skip


def greeting_wait(port: int, read_timeout: float) -> tuple[float, float | None]:
    """How long to listen for a greeting on an open port: (at most, at least when the port's
    usual service does not greet, to be stretched to a few round trips; None otherwise)."""
    wait = min(read_timeout, GREETING_WAIT)
    if WELL_KNOWN.get(port, "") in CLIENT_FIRST:
        return wait, min(wait, QUIET_WAIT)
    return wait, None


class PortScan(Probe):
    name = "tcp"

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        ports = sorted(
            {s.port for s in target.services if s.protocol == "tcp"} | set(ctx.default_ports)
        )
        pairs = [(str(address), port) for address in target.addresses for port in ports]
        seen: list[ServiceObservation | None] = [None] * len(pairs)
        # Port by port across the addresses, so that a multi-homed asset's workers spread out.
        order: range | list[int] = range(len(pairs))
        if len(target.addresses) > 1:
            order = sorted(order, key=lambda i: (i % len(ports), i // len(ports)))
        queue = iter(order)

        async def worker() -> None:
            for index in queue:  # the workers share one iterator: each port is tried once
                address, port = pairs[index]
                seen[index] = await self._probe_port(address, port, target, ctx)

        # Workers per address (the per-host limit would hold any more idle), not a task per port.
        workers = min(len(pairs), max(1, ctx.max_connections_per_host) * len(target.addresses))
        await asyncio.gather(*(worker() for _ in range(workers)))
        services = [s for s in seen if s is not None]
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
        wait, quiet = greeting_wait(port, ctx.read_timeout)
        state, greeting = await ctx.knock(address, port, wait, quiet, QUIET_ROUND_TRIPS)
        if state is not PortState.open:
            return ServiceObservation(address, port, state)
        declared = next((s.name for s in target.services if s.port == port and s.name), "")
        return ServiceObservation(
            address,
            port,
            PortState.open,
            service=declared or identify(port, greeting),
            banner=printable(greeting),
        )
