"""Detected software from real audits: loopback peers that answer like an Orthanc (REST API
`/system`), an Apache (Server header), an OpenSSH (greeting) and a real DCMTK archive
(dcmqrscp, its DICOM implementation version name) are audited through the services; each
sighting becomes a CPE candidate with its confidence, and those above the configured threshold
(or confirmed) are matched at once. Then the probe readings the candidates are built from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from inventory.models import Finding, SoftwareCandidate
from inventory.services import vulns
from inventory.services.audits import audit_asset
from inventory.services.vuln_import import import_files
from inventory.settings import load_settings
from inventory.vulns.detect import candidates
from tests.audit.test_dicom import bind_shim, dcmqrscp  # noqa: F401 - fixtures
from tests.audit.webpeers import json_route, serve_http, static
from tests.factories import make_asset
from tests.loopback import asyncio_peer, greeting_peer
from tests.vulns.data import KEV, NVD_SAMPLE

# ruff: noqa: F811 - the dcmqrscp fixture imported above is a parameter here

HOST = "127.62.7.1"


def audit_settings(ports: list[int]) -> Any:
    return load_settings(environ={}).audit.model_copy(
        update={"default_ports": ports, "connect_timeout": 1.0, "read_timeout": 1.0}
    )


@pytest.fixture
def peers() -> Iterator[dict[str, int]]:
    orthanc = static({"/system": json_route({"Name": "Orthanc", "Version": "1.11.3"})})
    apache = static({"/": (200, {"Content-Type": "text/plain"}, b"ok")}, "Apache/2.4.49 (Unix)")

    async def start() -> tuple[list[Any], int, int]:
        first, orthanc_port = await serve_http(orthanc, HOST)
        second, apache_port = await serve_http(apache, HOST)
        return [first, second], orthanc_port, apache_port

    with ExitStack() as stack:
        _, orthanc_port, apache_port = stack.enter_context(asyncio_peer(start))
        ssh_port = stack.enter_context(greeting_peer(HOST, b"SSH-2.0-OpenSSH_9.7p1 Debian-5\r\n"))
        yield {"orthanc": orthanc_port, "apache": apache_port, "ssh": ssh_port}


@pytest.mark.skipif(shutil.which("dcmqrscp") is None, reason="dcmtk is not installed")
def test_an_audit_turns_what_it_saw_into_candidates_and_matches_the_sure_ones(
    session, peers, dcmqrscp
):
    import_files(session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests")
    scp = dcmqrscp()
    services = f"{peers['orthanc']}/tcp http\n{peers['apache']}/tcp http\n{scp.port}/tcp dicom"
    asset = make_asset(
        session,
        addresses=f"{HOST}\n{scp.host}",
        expected_services=services,
        ae_titles="PACS",
    )
    settings = audit_settings([peers["ssh"]])
    audit = audit_asset(
        session=session, asset_id=asset.id, settings=settings, actor="tests", trigger="cli"
    )
    assert audit.outcome == "completed"
    found = {
        c.cpe.split(":")[4]: c
        for c in session.scalars(
            select(SoftwareCandidate).where(SoftwareCandidate.asset_id == asset.id)
        )
    }
    orthanc, apache, ssh = found["orthanc"], found["http_server"], found["openssh"]
    assert orthanc.cpe == "cpe:2.3:a:orthanc-server:orthanc:1.11.3:*:*:*:*:*:*:*"
    assert (orthanc.confidence, orthanc.source, orthanc.port) == (0.95, "orthanc", peers["orthanc"])
    assert apache.cpe == "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"
    assert (apache.confidence, apache.source, apache.seen) == (0.7, "http", "Apache/2.4.49 (Unix)")
    assert ssh.cpe == "cpe:2.3:a:openbsd:openssh:9.7:p1:*:*:*:*:*:*"
    assert (ssh.confidence, ssh.seen) == (0.6, "SSH-2.0-OpenSSH_9.7p1 Debian-5")
    dcmtk = found["dcmtk"]  # the real archive's implementation version name
    assert dcmtk.cpe.startswith("cpe:2.3:a:offis:dcmtk:3.6.") and dcmtk.confidence == 0.85
    assert dcmtk.seen.startswith("OFFIS_DCMTK_36") and dcmtk.port == scp.port

    def subjects() -> set[str]:
        session.expire_all()
        return {
            f.subject
            for f in session.scalars(
                select(Finding).where(Finding.asset_id == asset.id, Finding.status == "open")
            )
            if f.check_id == "vuln.cve"
        }

    # Orthanc's API is sure enough (95% >= 90%): matched by the audit itself, on its port.
    assert subjects() == {"CVE-2023-33466"}
    orthanc_finding = session.scalars(
        select(Finding).where(Finding.subject == "CVE-2023-33466")
    ).one()
    assert orthanc_finding.port == peers["orthanc"]
    assert orthanc_finding.evidence["source"] == "detected"
    # A person confirms the Apache the header announces: matched at once.
    vulns.decide_candidate(
        session=session, asset_id=asset.id, candidate_id=apache.id, decision="confirmed", actor="a"
    )
    assert subjects() == {"CVE-2023-33466", "CVE-2021-41773"}
    # Another audit keeps the decision and the findings; a lower threshold takes the SSH banner.
    lower = vulns.VulnOptions(auto_confirm_confidence=0.6)
    audit_asset(
        session=session,
        asset_id=asset.id,
        settings=settings,
        actor="tests",
        trigger="cli",
        vulns=lower,
    )
    assert {"CVE-2023-33466", "CVE-2021-41773", "CVE-2024-6387"} <= subjects()
    session.refresh(apache)
    assert apache.status == "confirmed"


def observed(service: str, product: str = "", version: str = "", banner: str = "") -> Any:
    return SimpleNamespace(
        address="10.0.0.9",
        port=1,
        service=service,
        product=product,
        version=version,
        banner=banner,
    )


@pytest.mark.parametrize(
    ("seen", "cpe", "confidence"),
    [
        (
            observed("dicom", "dcmtk", "3.6.6", "OFFIS_DCMTK_366 1.2.276"),
            "offis:dcmtk:3.6.6:*",
            0.85,
        ),
        # DCMTK's name drops the dots: 3610 is 3.6.10, not 3.6.1.0 (what the probe reads).
        (
            observed("dicom", "dcmtk", "3.6.1.0", "OFFIS_DCMTK_3610 1.2"),
            "offis:dcmtk:3.6.10:*",
            0.85,
        ),
        (observed("dicom", "Orthanc", "1_12_1", "ORTHANC_1_12_1"), "orthanc:1.12.1:*", 0.85),
        (observed("smb", "Samba", "4.17.12"), "samba:samba:4.17.12:*", 0.7),
        (observed("ftp", "ProFTPD", "1.3.5e", "220 ProFTPD 1.3.5e"), "proftpd:1.3.5:e", 0.7),
        (observed("ftp", "vsFTPd", "2.3.4", "220 (vsFTPd 2.3.4)"), "vsftpd:2.3.4:*", 0.7),
        (observed("https", "nginx", "1.20.0", "Server: nginx/1.20.0"), "f5:nginx:1.20.0:*", 0.7),
        (observed("redis", "Redis", "7.0.15"), "redis:redis:7.0.15:*", 0.9),
        (observed("ssh", banner="SSH-2.0-OpenSSH_8.9 Ubuntu"), "openssh:8.9:-", 0.6),
        (observed("ssh", banner="SSH-2.0-dropbear_2022.83"), "dropbear_ssh:2022.83:*", 0.6),
    ],
)
def test_readings_become_the_names_nvd_uses(seen, cpe, confidence):
    [candidate] = candidates([seen])
    assert f":{cpe}:" in candidate.cpe + ":" and candidate.confidence == confidence


@pytest.mark.parametrize(
    "seen",
    [
        observed("http", "Apache"),  # no version: says nothing useful
        observed("dicom", "pynetdicom", "2.1.0"),  # not a product the feeds know
        observed("http", "Apache", "2.4.49; rm -rf"),  # not a version
        observed("ssh", banner="SSH-2.0-SomethingElse_1.0"),
    ],
)
def test_readings_without_a_usable_version_give_nothing(seen):
    assert candidates([seen]) == []
