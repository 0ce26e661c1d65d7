"""Remote-access services reachable on the network: telnet, VNC, RDP (`remote-access.exposed`)."""

from __future__ import annotations

import time

from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    Target,
)
from inventory.i18n import N_

REMOTE_ACCESS = "remote-access.exposed"
REMOTE_SERVICES = {"telnet": "Telnet", "vnc": "VNC", "rdp": "Remote Desktop (RDP)"}


class RemoteAccess(Probe):
    """Judges the port stage's observations; opens no connection of its own."""

    name = "remote-access"

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        findings = [
            FindingCandidate(
                check=REMOTE_ACCESS,
                severity="high",
                address=s.address,
                port=s.port,
                title=f"{REMOTE_SERVICES[s.service]} is reachable on port {s.port}",
                remediation=N_(
                    "Disable remote access you do not use; otherwise allow it only through the "
                    "VPN and from the administrators' addresses, never from the whole network."
                ),
                evidence={"service": s.service, "banner": s.banner},
            )
            for s in ctx.observed
            if s.state is PortState.open and s.service in REMOTE_SERVICES
        ]
        return ProbeResult(
            self.name,
            ProbeOutcome.ran,
            findings=findings,
            checks={REMOTE_ACCESS},
            duration=time.monotonic() - started,
        )
