"""FTP: anonymous login (login and list only) and cleartext (`ftp.anonymous-login`,
`ftp.cleartext`).

Runs on every open port the port stage named "ftp" (declared, or a "220" greeting on any port).
Read-only: USER/PASS, FEAT, PASV and one NLST of the root whose entries are counted, never kept
(file names may carry patient names); no upload, no download, no directory change.
"""

from __future__ import annotations

import asyncio
import re

from inventory.audit.probes._wire import Buffered, ProtocolError, ports_for, run_on_ports
from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeResult,
    ServiceObservation,
    Target,
    printable,
)
from inventory.i18n import N_

ANONYMOUS = "ftp.anonymous-login"
CLEARTEXT = "ftp.cleartext"
ANONYMOUS_PASSWORD = "vigie@example.invalid"
FAILED_LOGIN_PATIENCE = 4.0  # servers delay a refused login on purpose (vsftpd: 1 s)
MAX_ENTRIES = 1000  # root entries counted at most
MAX_LISTING_BYTES = 256 * 1024
ANONYMOUS_REMEDIATION = N_(
    "Disable anonymous login on this FTP server (on a NAS: turn off 'anonymous' or 'guest' FTP "
    "access). If files must be shared, give each person an account, prefer SFTP or FTPS, and "
    "allow it only over the VPN."
)
_PASV = re.compile(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")
_VERSION = re.compile(
    r"(vsFTPd|ProFTPD|Pure-FTPd|FileZilla Server|Microsoft FTP Service)\s*([\w.]*)"
)


class FtpError(ProtocolError):
    pass


async def _reply(stream: Buffered, patience: float = 1.0) -> tuple[int, list[str]]:
    """One FTP reply (possibly multi-line): its code and its lines as printable text."""
    first = await stream.line(patience)
    if len(first) < 3 or not first[:3].isdigit():
        raise FtpError(f"not an FTP reply: {printable(first, 60)!r}")
    code = int(first[:3])
    lines = [printable(first)]
    if first[3:4] == b"-":
        end = first[:3] + b" "
        while True:
            line = await stream.line()
            lines.append(printable(line))
            if line.startswith(end) or len(lines) > 200:
                break
    return code, lines


async def _command(
    stream: Buffered, writer: asyncio.StreamWriter, text: str, patience: float = 1.0
) -> tuple[int, list[str]]:
    writer.write(text.encode("ascii") + b"\r\n")
    return await _reply(stream, patience)


def _product(greeting: str) -> tuple[str, str]:
    match = _VERSION.search(greeting)
    return (match.group(1), match.group(2)) if match else ("", "")


class Ftp(Probe):
    name = "ftp"
    default_ports = (21,)

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        budget = 3 * ctx.connect_timeout + 16 * ctx.read_timeout

        async def on_port(
            address: str, port: int
        ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
            return await self._check_port(address, port, target, ctx)

        return await run_on_ports(
            self.name, "FTP", {ANONYMOUS, CLEARTEXT}, ports_for(ctx, {"ftp"}), on_port, budget
        )

    async def _check_port(
        self, address: str, port: int, target: Target, ctx: ProbeContext
    ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
        findings: list[FindingCandidate] = []
        async with ctx.connect(address, port) as (reader, writer):
            stream = Buffered(ctx, reader, cap=64 * 1024)
            code, greeting = await _reply(stream)
            if code != 220:
                raise FtpError(f"the server did not greet with 220 but {code}")
            banner = " ".join(greeting)[:200]
            product, version = _product(banner)
            code, features = await _command(stream, writer, "FEAT")
            tls = code == 211 and any("AUTH TLS" in f.upper() for f in features[1:])
            code, _ = await _command(stream, writer, "USER anonymous")
            if code == 331:
                code, _ = await _command(
                    stream, writer, f"PASS {ANONYMOUS_PASSWORD}", FAILED_LOGIN_PATIENCE
                )
            anonymous = code == 230
            if anonymous:
                entries, capped = await self._count_root(stream, writer, address, ctx)
                evidence: dict[str, object] = {"banner": banner, "root_entries": entries}
                if capped:
                    evidence["root_entries_capped"] = True
                findings.append(
                    FindingCandidate(
                        check=ANONYMOUS,
                        severity="high",
                        address=address,
                        port=port,
                        title=f"The FTP server on port {port} lets anyone in without a password",
                        remediation=ANONYMOUS_REMEDIATION,
                        evidence=evidence,
                    )
                )
            writer.write(b"QUIT\r\n")
        if not tls:  # FEAT did not list it: some servers offer AUTH TLS without saying so
            tls = await self._auth_tls_accepted(address, port, ctx)
        if not tls:
            findings.append(
                FindingCandidate(
                    check=CLEARTEXT,
                    severity="medium",
                    address=address,
                    port=port,
                    title=f"The FTP server on port {port} sends passwords and files unencrypted",
                    remediation=N_(
                        "Turn on FTPS (AUTH TLS) and require it, or replace FTP by SFTP; disable "
                        "FTP altogether if it is not needed, and reach it only over the VPN."
                    ),
                    evidence={"banner": banner, "auth_tls": False},
                )
            )
        service = ServiceObservation(
            address,
            port,
            PortState.open,
            service="ftp",
            banner=banner,
            product=product,
            version=version,
        )
        return [service], findings

    async def _count_root(
        self, stream: Buffered, writer: asyncio.StreamWriter, address: str, ctx: ProbeContext
    ) -> tuple[int | None, bool]:
        """Counts the root's entries through one passive NLST; the names are dropped at once.
        The data connection goes to the audited address, whatever PASV says (no FTP bounce)."""
        code, lines = await _command(stream, writer, "PASV")
        match = _PASV.search(" ".join(lines).encode()) if code == 227 else None
        if match is None:
            return None, False
        data_port = int(match.group(5)) * 256 + int(match.group(6))
        async with ctx.connect(address, data_port) as (data_reader, _data_writer):
            code, _ = await _command(stream, writer, "NLST")
            if code not in (125, 150):
                return None, False
            listing, capped = await Buffered(ctx, data_reader, cap=MAX_LISTING_BYTES).rest()
        entries = sum(1 for line in listing.splitlines() if line.strip())
        if entries > MAX_ENTRIES:
            entries, capped = MAX_ENTRIES, True
        if not capped:
            await _reply(stream)  # 226 transfer complete
        return entries, capped

    async def _auth_tls_accepted(self, address: str, port: int, ctx: ProbeContext) -> bool:
        """When FEAT did not say, asks AUTH TLS on a fresh connection (234 = offered); the
        connection is closed before any handshake."""
        async with ctx.connect(address, port) as (reader, writer):
            stream = Buffered(ctx, reader, cap=64 * 1024)
            code, _ = await _reply(stream)
            if code != 220:
                raise FtpError(f"the server did not greet with 220 but {code}")
            code, _ = await _command(stream, writer, "AUTH TLS")
            return code == 234
