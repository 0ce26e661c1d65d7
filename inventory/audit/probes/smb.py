"""SMB file servers: shares listable without credentials, and SMBv1 (`smb.guest-access`).

Runs on every open port the port stage named SMB: 445, or a port declared smb, microsoft-ds or
cifs; 139 and ports declared netbios-ssn get a NetBIOS session request first. Each port gets up
to three short conversations, each on its own connection:

1. SMBv1: an SMB1 NEGOTIATE offering only "NT LM 0.12". A server that picks it still accepts
   SMBv1; it then gets one null Session Setup, whose answer names its software (Samba 4.17.12).
2. A null session over SMB2/3 (NTLM anonymous: no user, no password); if it is let in, the share
   list is asked through the srvsvc pipe of IPC$ (NetShareEnumAll, level 1), as `smbclient -L`.
3. The same as user "guest" with no password, even when the null session listed them: the
   evidence says every way in, and each has its own setting to close.

Read-only: the only thing opened is the srvsvc pipe of IPC$, the remote-procedure channel every
share listing goes through; no share is connected, no file opened, read or written. Only share
names (configuration) and their count are kept, at most MAX_NAMES; share remarks are read only to
recognise Samba's version in IPC$'s ("IPC Service (Samba 4.17.12)") and then dropped.

The client (`_smb_client`) is our own, on `ProbeContext.connect`: see why there. A server that
speaks only SMBv1 already has a finding; its shares are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inventory.audit.probes._smb_client import (
    SAMBA_VERSION,
    STYPE_SPECIAL,
    Listing,
    SmbError,
    list_shares,
    smbv1_accepted,
)
from inventory.audit.probes._wire import (
    MAX_NAMES,
    ports_for,
    run_on_ports,
)
from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeResult,
    ServiceObservation,
    Target,
)
from inventory.i18n import N_

CHECK = "smb.guest-access"
SMB_NAMES = {"smb", "microsoft-ds", "cifs", "netbios-ssn"}
NETBIOS_NAMES = {"netbios-ssn"}
NETBIOS_PORT = 139

LISTING_REMEDIATION = N_(
    "Turn off guest and anonymous access on this file server, so that only people with an "
    "account see its shares. In Samba: `restrict anonymous = 2`, `map to guest = never`, and no "
    "`guest ok = yes` share. On Windows: disable the Guest account and turn on 'Network access: "
    "Do not allow anonymous enumeration of SAM accounts and shares'. On a NAS: switch off guest "
    "access. Reach the shares only over the VPN."
)
SMB1_REMEDIATION = N_(
    "Disable SMBv1, an old protocol whose flaws worms used to spread (WannaCry). In Samba: "
    "`server min protocol = SMB2_10`. On Windows: remove the 'SMB 1.0/CIFS File Sharing Support' "
    "feature. On a NAS: set the minimum SMB version to SMB2 or SMB3. A device too old for SMB2 "
    "should be replaced, or kept on its own network segment reachable only by those who need it."
)
BOTH_REMEDIATION = N_(
    "Turn off guest and anonymous access on this file server, and disable SMBv1. In Samba: "
    "`restrict anonymous = 2`, `map to guest = never`, no `guest ok = yes` share, and "
    "`server min protocol = SMB2_10`. On Windows: disable the Guest account, turn on 'Network "
    "access: Do not allow anonymous enumeration of SAM accounts and shares' and remove the "
    "'SMB 1.0/CIFS File Sharing Support' feature. On a NAS: switch off guest access and set the "
    "minimum SMB version to SMB2 or SMB3. Reach the shares only over the VPN; a device too old "
    "for SMB2 should be replaced or kept on its own network segment."
)

# --- the probe ------------------------------------------------------------------------------


@dataclass
class _PortFacts:
    smb1: bool = False
    native: str = ""
    listing: Listing | None = None
    listed_with: list[str] = field(default_factory=list)
    smb2: bool = True
    dialect: str = ""


def _product(facts: _PortFacts) -> tuple[str, str]:
    """From SMB1's NativeLanMan, or else Samba's default IPC$ remark ("IPC Service (Samba
    4.17.12-Debian)"); other shares' remarks are the users' words."""
    shares = (facts.listing.shares or []) if facts.listing else []
    remarks = [s.remark for s in shares if s.name.upper() == "IPC$"]
    for text in (facts.native, *remarks):
        match = SAMBA_VERSION.search(text)
        if match:
            return "Samba", match.group(1)
    if facts.native.startswith("Windows"):
        return "Windows", ""
    return "", ""


def _finding(address: str, port: int, facts: _PortFacts) -> FindingCandidate | None:
    shares = facts.listing.shares if facts.listing else None
    if shares is None and not facts.smb1:
        return None
    evidence: dict[str, Any] = {"smbv1": facts.smb1}
    if facts.dialect:
        evidence["smb2_dialect"] = facts.dialect
    if shares is not None:
        names = [s.name for s in shares if s.name]
        administrative = [s.name for s in shares if s.name.endswith("$") or s.kind & STYPE_SPECIAL]
        evidence.update(
            {
                "listed_with": facts.listed_with,
                "shares_listed": len(shares),
                "shares": names[:MAX_NAMES],
                "administrative_shares": administrative[:MAX_NAMES],
            }
        )
        if len(names) > MAX_NAMES:
            evidence["shares_capped"] = True
    if not facts.smb2:
        evidence["shares_not_checked"] = "the server speaks only SMBv1"
    if shares is not None and facts.smb1:
        title = (
            f"Anyone on the network can list the shared folders on port {port}, and the file "
            "server still accepts SMBv1"
        )
        remediation = BOTH_REMEDIATION
    elif shares is not None:
        title = f"Anyone on the network can list the shared folders on port {port}"
        remediation = LISTING_REMEDIATION
    else:
        title = f"The file server on port {port} still accepts SMBv1"
        remediation = SMB1_REMEDIATION
    return FindingCandidate(
        check=CHECK,
        severity="high",
        address=address,
        port=port,
        title=title,
        remediation=remediation,
        evidence=evidence,
    )


class Smb(Probe):
    name = "smb"
    default_ports = (445, NETBIOS_PORT)

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        budget = 4 * ctx.connect_timeout + 30 * ctx.read_timeout
        netbios = {
            (s.address, s.port)
            for s in ctx.observed
            if s.port == NETBIOS_PORT or s.service.lower() in NETBIOS_NAMES
        }

        async def on_port(
            address: str, port: int
        ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
            return await self._check_port(ctx, address, port, (address, port) in netbios)

        return await run_on_ports(
            self.name, "SMB", {CHECK}, ports_for(ctx, SMB_NAMES), on_port, budget
        )

    async def _check_port(
        self, ctx: ProbeContext, address: str, port: int, netbios: bool
    ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
        facts = _PortFacts()
        facts.smb1, facts.native = await smbv1_accepted(ctx, address, port, netbios)
        for how, user in (("null session", ""), ("guest", "guest")):
            listing = await list_shares(ctx, address, port, netbios, user)
            if not listing.smb2:
                if not facts.smb1:
                    raise SmbError("the server accepted neither SMB1 nor SMB2")
                facts.smb2 = False
                break
            facts.dialect = facts.dialect or listing.dialect
            if listing.shares is not None:
                facts.listing = facts.listing or listing
                facts.listed_with.append(how)
        product, version = _product(facts)
        banner = "; ".join(
            part
            for part in (
                f"SMB {facts.dialect}" if facts.dialect else "",
                "SMBv1" if facts.smb1 else "",
                facts.native,
            )
            if part
        )
        service = ServiceObservation(
            address,
            port,
            PortState.open,
            service="smb",
            banner=banner[:200],
            product=product,
            version=version,
        )
        finding = _finding(address, port, facts)
        return [service], [finding] if finding else []
