"""The optional default-credentials probe against real web peers on loopback (127.42.12x.x):
off unless the asset turned it on, finds a viewer still on its factory login, leaves one with
its own password alone, and reads nothing behind the login."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import netaddr

from inventory.audit import ProbeContext, ProbeOutcome, ServiceObservation, Target
from inventory.audit.probes.base import PortState
from inventory.audit.probes.default_credentials import CHECK, DefaultCredentials
from tests.audit import peers, webpeers

PATIENTS = ["SYNTH-DEFCRED-0001", "SYNTH-DEFCRED-0002"]
ON = frozenset({"default-credentials"})


def orthanc(user: str, password: str, seen: list[str]) -> webpeers.Router:
    inner = webpeers.static(
        {
            "/system": webpeers.json_route({"Name": "SYNTH", "Version": "1.12.1"}),
            "/patients": webpeers.json_route(PATIENTS),
        }
    )
    guarded = webpeers.basic_auth(inner, user=user, password=password)

    def route(path: str, headers: dict[str, str]) -> webpeers.Route:
        seen.append(path)
        return guarded(path, headers)

    return route


def probe(router: webpeers.Router, options: frozenset[str] = ON, block: int = 120) -> Any:
    async def scenario() -> Any:
        address = webpeers.host(block)
        server, port = await webpeers.serve_http(router, address)
        ctx = ProbeContext(connect_timeout=1.0, read_timeout=1.0)
        ctx.observed = [ServiceObservation(address, port, PortState.open, service="http")]
        target = Target("viewer", (netaddr.IPAddress(address),), options=options)
        async with server:
            return await DefaultCredentials().check(target, ctx), port

    return asyncio.run(scenario())


def test_off_by_default_and_nothing_is_sent():
    seen: list[str] = []
    result, _ = probe(orthanc("orthanc", "orthanc", seen), options=frozenset())
    assert result.outcome is ProbeOutcome.skipped and result.findings == []
    assert seen == [] and result.checks == set()


def test_a_viewer_on_its_factory_login_is_a_critical_finding():
    seen: list[str] = []
    result, port = probe(orthanc("orthanc", "orthanc", seen))
    assert result.outcome is ProbeOutcome.ran, result.reason
    (finding,) = result.findings
    assert (finding.check, finding.severity, finding.port) == (CHECK, "critical", port)
    assert "orthanc / orthanc" in finding.title
    assert finding.evidence["username"] == "orthanc" and finding.evidence["path"] == "/system"
    assert set(seen) == {"/system"}  # nothing else asked: /patients never touched
    assert not any(p in repr(result) for p in PATIENTS)


def test_a_viewer_with_its_own_password_is_no_finding_and_judged():
    seen: list[str] = []
    result, _ = probe(orthanc("radiologie", "Long-and-unique-2026", seen))
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert result.findings == [] and result.checks == {CHECK}
    assert len(seen) == 1 + 4  # one look, then the short list, never more


def test_a_service_without_a_login_prompt_gets_no_attempt():
    seen: list[str] = []

    def open_site(path: str, headers: dict[str, str]) -> webpeers.Route:
        seen.append(headers.get("authorization", ""))
        return webpeers.html_route("Welcome to nginx!")

    result, _ = probe(open_site)
    assert result.outcome is ProbeOutcome.ran and result.findings == []
    assert not any(seen)  # no credentials were ever sent


def test_a_silent_peer_costs_bounded_time_and_fails():
    async def scenario() -> Any:
        server, host, port = await peers.serve(peers.silent)
        ctx = ProbeContext(connect_timeout=0.5, read_timeout=0.5)
        ctx.observed = [ServiceObservation(host, port, PortState.open, service="http")]
        target = Target("viewer", (netaddr.IPAddress(host),), options=ON)
        async with server:
            started = time.monotonic()
            result = await DefaultCredentials().check(target, ctx)
            return result, time.monotonic() - started

    result, elapsed = asyncio.run(scenario())
    assert result.outcome is ProbeOutcome.failed and result.reason
    assert result.checks == set()
    assert elapsed < 10
