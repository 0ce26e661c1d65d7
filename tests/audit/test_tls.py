"""The tls probe against real TLS peers on loopback (127.42.12x.x), with certificates made at test
time: a test CA the probe does not trust, self-signed, expired, wrong host, TLS 1.0 only."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Any

import netaddr
import pytest

from inventory.audit import ProbeContext, ProbeOutcome, ServiceObservation, Target
from inventory.audit.probes.base import PortState
from inventory.audit.probes.tls import TLSProbe, is_self_signed
from inventory.validators import ExpectedService
from tests.audit import peers, webpeers

NAME = "pacs.clinic.test"


@pytest.fixture(scope="module")
def ca() -> webpeers.Cert:
    return webpeers.make_cert("Clinic Test CA", ca=True)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def tls_probe_on(
    cert: webpeers.Cert,
    directory: Path,
    *,
    name: str = NAME,
    service: str = "https",
    max_version: ssl.TLSVersion | None = None,
) -> Any:
    address = webpeers.host(120)
    tls = webpeers.server_context(cert, directory, max_version=max_version)
    server, port = await webpeers.serve_http(webpeers.static({}), address, tls=tls)
    async with server:
        t = Target(name, (netaddr.IPAddress(address),))
        ctx = ProbeContext(
            connect_timeout=1.0,
            read_timeout=1.0,
            observed=[ServiceObservation(address, port, PortState.open, service=service)],
        )
        return await TLSProbe().check(t, ctx), address, port


def weaknesses(result: Any) -> list[str]:
    assert result.outcome is ProbeOutcome.ran, result.reason
    if not result.findings:
        return []
    (finding,) = result.findings
    assert finding.check == "tls.weak" and finding.severity == "medium"
    return sorted(finding.evidence["weaknesses"])


def test_a_valid_certificate_from_an_untrusted_ca_is_not_weak(ca, tmp_path):
    leaf = webpeers.make_cert(NAME, dns=(NAME,), issuer=ca)
    result, _, _ = run(tls_probe_on(leaf, tmp_path))
    assert weaknesses(result) == []  # "self-signed" is about issuer == subject, not trust
    assert result.checks == {"tls.weak"}


def test_self_signed_is_weak_and_the_subject_is_address_port(tmp_path):
    cert = webpeers.make_cert(NAME, dns=(NAME,))
    result, address, port = run(tls_probe_on(cert, tmp_path))
    assert weaknesses(result) == ["self-signed"]
    assert result.findings[0].subject == f"{address}:{port}"


def test_serving_the_ca_certificate_itself_is_self_signed(ca, tmp_path):
    result, _, _ = run(tls_probe_on(ca, tmp_path, name="Clinic Test CA"))
    assert "self-signed" in weaknesses(result)


def test_self_signed_means_own_key_not_just_matching_names(ca):
    leaf = webpeers.make_cert(NAME, issuer=ca)
    impostor = webpeers.make_cert(NAME, issuer=ca, issuer_name=NAME)  # issuer == subject name
    own = webpeers.make_cert(NAME)
    assert is_self_signed(ca.cert) and is_self_signed(own.cert)
    assert not is_self_signed(leaf.cert)
    assert impostor.cert.issuer == impostor.cert.subject
    assert not is_self_signed(impostor.cert)


def test_expired_certificate(ca, tmp_path):
    cert = webpeers.make_cert(NAME, dns=(NAME,), issuer=ca, days=(-400, -10))
    result, _, _ = run(tls_probe_on(cert, tmp_path))
    assert weaknesses(result) == ["expired"]
    not_after = result.findings[0].evidence["not_after"]
    assert not_after < time.strftime("%Y-%m-%d")


def test_wrong_host(ca, tmp_path):
    cert = webpeers.make_cert("other.clinic.test", dns=("other.clinic.test",), issuer=ca)
    result, _, _ = run(tls_probe_on(cert, tmp_path))
    assert weaknesses(result) == ["wrong-host"]
    assert result.findings[0].evidence["certificate_names"] == ["other.clinic.test"]


def test_ip_address_and_wildcard_names_match(ca, tmp_path):
    async def scenario() -> Any:
        address = webpeers.host(121)
        cert = webpeers.make_cert("by-ip", ips=(address,), issuer=ca)
        tls = webpeers.server_context(cert, tmp_path)
        server, port = await webpeers.serve_http(webpeers.static({}), address, tls=tls)
        async with server:
            ctx = ProbeContext(
                connect_timeout=1.0,
                read_timeout=1.0,
                observed=[ServiceObservation(address, port, PortState.open, service="https")],
            )
            by_ip = await TLSProbe().check(Target("pacs", (netaddr.IPAddress(address),)), ctx)
        wildcard = webpeers.make_cert("w", dns=("*.clinic.test",), issuer=ca)
        return by_ip, await tls_probe_on(wildcard, tmp_path)

    by_ip, (by_wildcard, _, _) = run(scenario())
    assert weaknesses(by_ip) == []
    assert weaknesses(by_wildcard) == []


def test_tls_1_0_only_server_is_old_protocol(ca, tmp_path):
    leaf = webpeers.make_cert(NAME, dns=(NAME,), issuer=ca)
    try:
        result, _, _ = run(tls_probe_on(leaf, tmp_path, max_version=ssl.TLSVersion.TLSv1))
    except ssl.SSLError as exc:
        pytest.skip(f"the local OpenSSL refuses to serve TLS 1.0: {exc}")
    if result.outcome is ProbeOutcome.ran and not result.findings:
        pytest.skip("the local OpenSSL could not negotiate TLS 1.0 even at security level 0")
    assert weaknesses(result) == ["old-protocol"]
    assert result.findings[0].evidence["protocol"] == "TLSv1"


def test_dicom_tls_ports_are_checked(tmp_path):
    cert = webpeers.make_cert(NAME, dns=(NAME,))

    async def scenario() -> Any:
        address = webpeers.host(122)
        tls = webpeers.server_context(cert, tmp_path)
        server = await asyncio.start_server(peers.silent, address, 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        async with server:
            # declared as DICOM-TLS on a random port; the port stage saw it open
            t = Target(
                NAME,
                (netaddr.IPAddress(address),),
                services=(ExpectedService(port, "tcp", "dicom-tls"),),
            )
            ctx = ProbeContext(
                connect_timeout=1.0,
                read_timeout=1.0,
                observed=[ServiceObservation(address, port, PortState.open, service="dicom-tls")],
            )
            return await TLSProbe().check(t, ctx)

    assert weaknesses(run(scenario())) == ["self-signed"]


def test_plain_and_hostile_ports_are_bounded_and_not_judged():
    async def scenario() -> Any:
        address = webpeers.host(123)
        servers, observed = [], []
        for handler, service in [
            (webpeers.http_handler(webpeers.static({})), "http"),  # plain HTTP: not TLS
            (peers.greeting(b"garbage\r\n"), "http"),
            (peers.reset, "http"),
            (peers.flood, "http"),
            (peers.silent, "https"),  # TLS expected, nothing comes: a failure with reason
        ]:
            server, _, port = await peers.serve(handler, host=address)
            servers.append(server)
            observed.append(ServiceObservation(address, port, PortState.open, service=service))
        ctx = ProbeContext(connect_timeout=1.0, read_timeout=1.0, observed=observed)
        started = time.monotonic()
        try:
            result = await TLSProbe().check(Target("x", (netaddr.IPAddress(address),)), ctx)
        finally:
            for server in servers:
                server.close()
        return result, time.monotonic() - started, observed[-1].port

    result, elapsed, silent_port = run(scenario())
    assert elapsed < 4
    assert result.findings == []
    assert result.outcome is ProbeOutcome.failed
    assert (
        result.reason == f"{result.reason.split(':')[0]}:{silent_port}: no TLS handshake within 1s"
    )


def test_non_web_ports_are_left_alone():
    calls: list[int] = []

    async def recording(address: str, port: int) -> Any:
        calls.append(port)
        raise ConnectionRefusedError

    ctx = ProbeContext(
        connector=recording,
        observed=[
            ServiceObservation("127.42.124.1", 22, PortState.open, service="ssh"),
            ServiceObservation("127.42.124.1", 104, PortState.open, service="dicom"),
            ServiceObservation("127.42.124.1", 443, PortState.filtered),
            ServiceObservation("127.42.124.1", 2762, PortState.open, service="dicom-tls"),
        ],
    )
    run(TLSProbe().check(Target("x", (netaddr.IPAddress("127.42.124.1"),)), ctx))
    assert calls == [2762]
