"""TLS on web and DICOM-TLS ports: protocol version, certificate expiry, self-signed, wrong host.

One `tls.weak` finding per port (subject address:port) listing which weaknesses hold. The probe
connects only through `ProbeContext.connect` and upgrades the connection with asyncio's start_tls,
with a client that accepts TLS 1.0 and up (security level 0) so that old servers can be seen for
what they are. Nothing is trusted or verified against a store: "self-signed" means the certificate
names itself as issuer and its own key verifies its signature, not "signed by a CA we don't know".
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import netaddr
from cryptography import x509
from cryptography.x509.oid import NameOID

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

TLS_WEAK = "tls.weak"
WEB_PORTS = frozenset({80, 443, 8042, 8080, 8443})
WEB_SERVICES = frozenset({"http", "https"})
TLS_PORTS = frozenset({443, 2762, 8443})
TLS_SERVICES = frozenset({"https", "dicom-tls"})
OLD_PROTOCOLS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})


class NotTLS(Exception):
    """The peer answered, but not with a TLS handshake (plain HTTP, garbage, reset)."""


@dataclass
class TLSInfo:
    protocol: str
    cipher: str
    certificate: bytes | None  # DER


@functools.cache
def legacy_client_context() -> ssl.SSLContext:
    """A client that accepts anything from TLS 1.0 up and verifies nothing: it observes.

    One for the whole process, shared by every handshake (never changed after this): making an
    SSLContext costs about half a millisecond of CPU and ten kilobytes, once per web port is
    a tenth of a whole audit's CPU.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # deprecated for servers; a scanner must still see it
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):  # an OpenSSL built without them: keep its defaults
        pass
    return context


async def handshake(
    ctx: ProbeContext, address: str, port: int, server_name: str | None = None
) -> TLSInfo:
    """One TLS handshake over a connection from `ctx.connect`, bounded by the context's timeouts;
    made once per audit, port and server name, whichever probe asks first (the TLS probe and the
    web probe's choice of scheme share it: one connection less to the device).

    Raises NotTLS when the peer answers without TLS, TimeoutError / OSError otherwise.
    """
    return await ctx.once(
        ("tls-handshake", address, port, server_name),
        lambda: _handshake(ctx, address, port, server_name),
    )


async def _handshake(
    ctx: ProbeContext, address: str, port: int, server_name: str | None
) -> TLSInfo:
    async with ctx.connect(address, port) as (_reader, writer):
        try:
            await asyncio.wait_for(
                writer.start_tls(
                    legacy_client_context(),
                    server_hostname=server_name,
                    ssl_handshake_timeout=ctx.read_timeout,
                ),
                timeout=ctx.read_timeout,
            )
        except ssl.SSLError as exc:
            raise NotTLS(exc.reason or exc.__class__.__name__) from exc
        except (ConnectionResetError, BrokenPipeError, EOFError) as exc:
            raise NotTLS(exc.__class__.__name__) from exc
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None:
            raise NotTLS("no TLS session")
        cipher = ssl_object.cipher()
        return TLSInfo(
            protocol=ssl_object.version() or "",
            cipher=cipher[0] if cipher else "",
            certificate=ssl_object.getpeercert(binary_form=True),
        )


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer is subject and the certificate's own key verifies its signature."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - any failure means "not self"
        return False
    return True


def certificate_names(cert: x509.Certificate) -> tuple[list[str], list[netaddr.IPAddress]]:
    """DNS names and IP addresses the certificate is valid for (SAN; the CN when no SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return [n.lower() for n in names], []
    dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    ips = [netaddr.IPAddress(str(ip)) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def _dns_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def host_matches(cert: x509.Certificate, names: list[str], addresses: list[str]) -> bool:
    dns, ips = certificate_names(cert)
    for address in addresses:
        if netaddr.IPAddress(address) in ips or address in dns:
            return True
    return any(_dns_matches(p, n) for p in dns for n in names)


def expected_names(target: Target) -> list[str]:
    """The names the asset is reached by: its hostnames (when the target carries them) and its
    name when that looks like a DNS name."""
    names = [str(h).lower() for h in target.hostnames]
    if "." in target.name and " " not in target.name:
        names.append(target.name.lower())
    return names


def server_name(target: Target) -> str | None:
    """The name sent in the handshake (SNI): the first name the asset is reached by."""
    names = expected_names(target)
    return names[0] if names else None


def weaknesses(
    info: TLSInfo, target: Target, address: str, now: datetime | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Which of expired, self-signed, wrong-host, old-protocol hold; and evidence (no secrets)."""
    now = now or datetime.now(UTC)
    found: list[str] = []
    evidence: dict[str, Any] = {"protocol": info.protocol, "cipher": info.cipher}
    if info.protocol in OLD_PROTOCOLS:
        found.append("old-protocol")
    if info.certificate is None:
        evidence["certificate"] = "none"
        return found, evidence
    cert = x509.load_der_x509_certificate(info.certificate)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    evidence["not_after"] = not_after.isoformat()
    if not_after < now:
        found.append("expired")
    elif not_before > now:
        found.append("not-yet-valid")
    if is_self_signed(cert):
        found.append("self-signed")
    names = expected_names(target)
    if not host_matches(cert, names, [address, *(str(a) for a in target.addresses)]):
        found.append("wrong-host")
    dns, ips = certificate_names(cert)
    evidence["certificate_names"] = [*dns[:10], *(str(ip) for ip in ips[:10])]
    return found, evidence


def _candidate_ports(target: Target, ctx: ProbeContext) -> list[tuple[str, int, bool]]:
    """(address, port, whether TLS is expected there) for web and DICOM-TLS ports."""
    seen: dict[tuple[str, int], PortState] = {(s.address, s.port): s.state for s in ctx.observed}
    ports: set[tuple[str, int]] = set()
    expect: set[tuple[str, int]] = set()
    for s in ctx.observed:
        if s.state is not PortState.open:
            continue
        if (
            s.service in WEB_SERVICES
            or s.service in TLS_SERVICES
            or s.port in WEB_PORTS
            or s.port in TLS_PORTS
        ):
            ports.add((s.address, s.port))
            if s.service in TLS_SERVICES or s.port in TLS_PORTS:
                expect.add((s.address, s.port))
    for service in target.services:
        if service.protocol != "tcp" or service.name not in WEB_SERVICES | TLS_SERVICES:
            continue
        for address in target.addresses:
            key = (str(address), service.port)
            if seen.get(key, PortState.open) is PortState.open:
                ports.add(key)
                if service.name in TLS_SERVICES:
                    expect.add(key)
    return sorted((a, p, (a, p) in expect) for a, p in ports)


class TLSProbe(Probe):
    name = "tls"

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        candidates = _candidate_ports(target, ctx)
        sni = server_name(target)
        outcomes = await asyncio.gather(
            *(self._port(target, ctx, a, p, sni, tls) for a, p, tls in candidates)
        )
        findings = [f for f in outcomes if isinstance(f, FindingCandidate)]
        failures = [f for f in outcomes if isinstance(f, str)]
        return ProbeResult(
            self.name,
            ProbeOutcome.failed if failures else ProbeOutcome.ran,
            reason="; ".join(failures)[:300],
            findings=findings,
            checks={TLS_WEAK},
            duration=time.monotonic() - started,
        )

    async def _port(
        self,
        target: Target,
        ctx: ProbeContext,
        address: str,
        port: int,
        sni: str | None,
        expect_tls: bool,
    ) -> FindingCandidate | str | None:
        """A finding, None (no TLS here, or nothing weak), or a failure reason."""
        try:
            info = await handshake(ctx, address, port, sni)
        except NotTLS:
            return None
        except TimeoutError:
            if not expect_tls:  # a plain HTTP server waits in silence for a request line
                return None
            return f"{address}:{port}: no TLS handshake within {ctx.read_timeout:g}s"
        except OSError as exc:
            return f"{address}:{port}: {exc.__class__.__name__}"
        try:
            found, evidence = weaknesses(info, target, address)
        except ValueError as exc:
            return f"{address}:{port}: unreadable certificate ({exc.__class__.__name__})"
        if not found:
            return None
        evidence["weaknesses"] = found
        return FindingCandidate(
            check=TLS_WEAK,
            severity="medium",
            address=address,
            port=port,
            title=f"The TLS set-up on port {port} is weak: {', '.join(found)}",
            remediation=N_(
                "Install a certificate from your organisation's or a public certificate "
                "authority, issued for the name users type, and renew it before it expires; "
                "allow only TLS 1.2 and 1.3."
            ),
            evidence=evidence,
        )
