"""The http probe against real web peers on loopback (127.42.11x.x): an Orthanc-like viewer
without TLS or login, an HTTPS viewer with basic auth, DICOMweb, redirects, hostile peers, and
the privacy rule (synthetic patient ids never leave the probe)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import netaddr

from inventory.audit import ProbeContext, ProbeOutcome, ServiceObservation, Target, audit
from inventory.audit.probes.base import PortState
from inventory.audit.probes.http import WebProbe
from inventory.audit.probes.tls import TLSProbe
from inventory.settings import load_settings
from inventory.validators import ExpectedService
from tests.audit import peers, webpeers

SYNTHETIC_IDS = ["SYNTH-PAT-7Q3X-0001", "SYNTH-PAT-7Q3X-0002", "SYNTH-PAT-7Q3X-0003"]
STUDY_IDS = ["SYNTH-STUDY-9K2M-01", "SYNTH-STUDY-9K2M-02"]


def orthanc_routes() -> webpeers.Router:
    return webpeers.static(
        {
            "/": (301, {"Location": "/app/explorer.html"}, b""),
            "/app/explorer.html": webpeers.html_route("Orthanc Explorer"),
            "/system": webpeers.json_route(
                {"Name": "CABINET-SYNTH", "Version": "1.12.1", "ApiVersion": 22}
            ),
            "/patients": webpeers.json_route(SYNTHETIC_IDS),
            "/studies": webpeers.json_route(STUDY_IDS),
        }
    )


def ctx_for(*observed: ServiceObservation, **limits: Any) -> ProbeContext:
    return ProbeContext(
        connect_timeout=limits.get("connect_timeout", 1.0),
        read_timeout=limits.get("read_timeout", 1.0),
        observed=list(observed),
    )


def web(address: str, port: int, service: str = "http") -> ServiceObservation:
    return ServiceObservation(address, port, PortState.open, service=service)


def target(address: str, name: str = "viewer", **kw: Any) -> Target:
    return Target(name, (netaddr.IPAddress(address),), **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def by_check(result: Any) -> dict[str, Any]:
    return {f.check: f for f in result.findings}


def test_orthanc_without_tls_or_login_is_cleartext_and_open():
    async def scenario() -> Any:
        address = webpeers.host(110)
        server, port = await webpeers.serve_http(orthanc_routes(), address)
        async with server:
            return await WebProbe().check(target(address), ctx_for(web(address, port))), port

    result, port = run(scenario())
    assert result.outcome is ProbeOutcome.ran, result.reason
    found = by_check(result)
    assert set(found) == {"http.cleartext", "http.no-authentication"}
    open_finding = found["http.no-authentication"]
    assert open_finding.severity == "critical" and open_finding.port == port
    assert {"/system", "/patients", "/studies"} <= set(open_finding.evidence["open_paths"])
    patients = open_finding.evidence["paths"]["/patients"]
    assert patients["status"] == 200 and patients["items"] == 3
    assert patients["content_type"] == "application/json"
    assert open_finding.evidence["paths"]["/dicom-web/studies"]["status"] == 404
    # serves patient lists in clear: critical even when the asset is not flagged
    assert found["http.cleartext"].severity == "critical"
    (service,) = result.services
    assert (service.service, service.product, service.version) == ("http", "Orthanc", "1.12.1")
    assert "Orthanc Explorer" in service.banner
    assert result.checks == {"http.cleartext", "http.no-authentication"}
    # privacy: no synthetic identifier, and not even the server's configured name
    text = repr(result)
    for value in [*SYNTHETIC_IDS, *STUDY_IDS, "CABINET-SYNTH"]:
        assert value not in text


def test_https_viewer_with_basic_auth_has_no_http_or_tls_findings(tmp_path: Path):
    ca = webpeers.make_cert("Clinic Test CA", ca=True)
    leaf = webpeers.make_cert("viewer.clinic.test", dns=("viewer.clinic.test",), issuer=ca)

    async def scenario() -> Any:
        address = webpeers.host(110)
        tls = webpeers.server_context(leaf, tmp_path)
        server, port = await webpeers.serve_http(
            webpeers.basic_auth(orthanc_routes()), address, tls=tls
        )
        async with server:
            # a random port, not observed here: found through the declared https service
            t = target(
                address,
                name="viewer.clinic.test",
                services=(ExpectedService(port, "tcp", "https"),),
                holds_patient_data=True,
            )
            ctx = ctx_for()
            return await WebProbe().check(t, ctx), await TLSProbe().check(t, ctx)

    http_result, tls_result = run(scenario())
    assert http_result.outcome is ProbeOutcome.ran, http_result.reason
    assert http_result.findings == []
    (service,) = http_result.services
    assert service.service == "https"
    assert tls_result.outcome is ProbeOutcome.ran and tls_result.findings == []


def test_plain_http_that_redirects_to_https_on_the_same_host_is_not_cleartext(tmp_path: Path):
    cert = webpeers.make_cert("x", ips=("127.0.0.1",))

    async def scenario() -> Any:
        address = webpeers.host(110)
        secure, secure_port = await webpeers.serve_http(
            webpeers.basic_auth(orthanc_routes()),
            address,
            tls=webpeers.server_context(cert, tmp_path),
        )

        def redirect(path: str, headers: dict[str, str]) -> webpeers.Route:
            return 301, {"Location": f"https://{address}:{secure_port}{path}"}, b""

        plain, plain_port = await webpeers.serve_http(redirect, address)
        async with secure, plain:
            return await WebProbe().check(target(address), ctx_for(web(address, plain_port)))

    result = run(scenario())
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert result.findings == []  # redirected to https, and 401 there


def test_redirects_to_another_host_are_not_followed():
    async def scenario() -> Any:
        address = webpeers.host(110)

        def elsewhere(path: str, headers: dict[str, str]) -> webpeers.Route:
            return 302, {"Location": "http://198.51.100.9/patients"}, b""

        server, port = await webpeers.serve_http(elsewhere, address)
        async with server:
            return await WebProbe().check(target(address), ctx_for(web(address, port)))

    result = run(scenario())
    found = by_check(result)
    assert set(found) == {"http.cleartext"}  # never went to 198.51.100.9
    assert found["http.cleartext"].severity == "high"
    assert found["http.cleartext"].evidence["root"]["redirect_to"] == "http://198.51.100.9"


def test_dicomweb_and_server_header_fingerprints():
    async def scenario() -> Any:
        address = webpeers.host(110)
        routes = webpeers.static(
            {
                "/": webpeers.html_route("Imaging portal"),
                "/dicom-web/studies": webpeers.json_route(
                    [{"0020000D": {"vr": "UI"}}], "application/dicom+json"
                ),
            },
            server_header="nginx/1.24.0",
        )
        server, port = await webpeers.serve_http(routes, address)
        async with server:
            return await WebProbe().check(
                target(address, holds_patient_data=True), ctx_for(web(address, port))
            )

    result = run(scenario())
    found = by_check(result)
    assert found["http.no-authentication"].evidence["open_paths"] == ["/dicom-web/studies"]
    assert found["http.cleartext"].severity == "critical"  # holds patient data
    assert result.services[0].product == "DICOMweb"
    assert "Server: nginx/1.24.0" in result.services[0].banner


def test_a_plain_web_page_is_cleartext_only_with_server_product():
    async def scenario() -> Any:
        address = webpeers.host(110)
        routes = webpeers.static({"/": webpeers.html_route("MedDream viewer")}, "Apache/2.4.57")
        server, port = await webpeers.serve_http(routes, address)
        async with server:
            return await WebProbe().check(target(address), ctx_for(web(address, port)))

    result = run(scenario())
    assert set(by_check(result)) == {"http.cleartext"}
    assert result.services[0].product == "MedDream"


def test_only_web_ports_are_probed():
    calls: list[tuple[str, int]] = []

    async def recording(address: str, port: int) -> Any:
        calls.append((address, port))
        raise ConnectionRefusedError

    ctx = ProbeContext(
        connector=recording,
        observed=[
            ServiceObservation("127.42.111.1", 22, PortState.open, service="ssh"),
            ServiceObservation("127.42.111.1", 4242, PortState.open, service="dicom"),
            ServiceObservation("127.42.111.1", 8042, PortState.closed),
            ServiceObservation("127.42.111.1", 9999, PortState.open, service="http"),
            ServiceObservation("127.42.111.1", 8080, PortState.open, service=""),
        ],
    )
    result = run(WebProbe().check(target("127.42.111.1"), ctx))
    assert sorted(calls) == [("127.42.111.1", 8080), ("127.42.111.1", 9999)]
    assert result.outcome is ProbeOutcome.failed and "ConnectionRefusedError" in result.reason


def test_hostile_peers_cost_bounded_time_and_fail_with_a_reason():
    async def scenario() -> Any:
        address = webpeers.host(111)
        servers = []
        observed = []
        names = {}
        for name, handler in [
            ("silent", peers.silent),
            ("flood", peers.flood),
            ("garbage", peers.greeting(b"\x00\x01garbage \xff\xfe\r\n\r\n")),
            ("reset", peers.reset),
            ("drip", peers.drip),
        ]:
            server, _, port = await peers.serve(handler, host=address)
            servers.append(server)
            observed.append(web(address, port))
            names[port] = name
        started = time.monotonic()
        try:
            result = await WebProbe().check(target(address), ctx_for(*observed))
        finally:
            for server in servers:
                server.close()
        return result, time.monotonic() - started, names

    result, elapsed, names = run(scenario())
    assert elapsed < 6, f"hostile peers held the probe for {elapsed:.1f}s"
    assert result.outcome is ProbeOutcome.failed
    for port in names:
        assert f":{port}:" in result.reason or len(result.reason) >= 290
    assert result.findings == []


def test_a_json_flood_is_read_with_a_byte_cap():
    async def scenario() -> Any:
        address = webpeers.host(111)
        server, port = await webpeers.serve_http(webpeers.big_json_route(10), address)
        async with server:
            started = time.monotonic()
            result = await WebProbe().check(target(address), ctx_for(web(address, port)))
            return result, time.monotonic() - started

    result, elapsed = run(scenario())
    assert elapsed < 5
    finding = by_check(result)["http.no-authentication"]
    patients = finding.evidence["paths"]["/patients"]
    assert patients["truncated"] is True and patients["bytes"] == 256 * 1024
    assert "xxxxxxxxxx" not in repr(result)


def test_end_to_end_through_the_engine():
    async def scenario() -> Any:
        address = webpeers.host(112)
        server, port = await webpeers.serve_http(orthanc_routes(), address)
        settings = load_settings(environ={}).audit.model_copy(
            update={"default_ports": [], "connect_timeout": 1.0, "read_timeout": 1.0}
        )
        t = Target(
            "orthanc",
            (netaddr.IPAddress(address),),
            services=(ExpectedService(port, "tcp", "http"),),
            holds_patient_data=True,
        )
        async with server:
            return await audit(t, settings), port

    report, port = run(scenario())
    outcomes = {r.probe: r for r in report.results}
    assert outcomes["http"].outcome is ProbeOutcome.ran
    assert outcomes["tls"].outcome is ProbeOutcome.ran
    checks = sorted((f.check, f.port) for f in report.findings)
    assert checks == [("http.cleartext", port), ("http.no-authentication", port)]
    assert {"http.cleartext", "http.no-authentication", "tls.weak"} <= report.checks_run
    assert "Orthanc" in {s.product for s in report.services}
    for value in SYNTHETIC_IDS:
        assert value not in repr(report)


def test_a_page_title_that_is_not_a_products_own_is_not_kept():
    """A worklist page titled with a patient's name: the name never reaches the banner."""

    async def scenario() -> Any:
        address = webpeers.host(119)
        routes = webpeers.static({"/": webpeers.html_route("Worklist - SYNTHETIC^TITLE^ECHO")})
        server, port = await webpeers.serve_http(routes, address)
        async with server:
            return await WebProbe().check(target(address), ctx_for(web(address, port)))

    result = run(scenario())
    assert result.outcome is ProbeOutcome.ran, result.reason
    (service,) = result.services
    assert "SYNTHETIC" not in repr(result) and "Worklist" not in service.banner
