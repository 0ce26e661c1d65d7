"""The DICOM probe against real peers on loopback, each on its own 127.42.200+.x address:
dcmtk's dcmqrscp (open, and restricted to known AEs), pynetdicom SCPs (open with synthetic
patients, AE-restricted), hostile peers, and the engine end to end. Plus the privacy rule: the
synthetic patients never appear in a result, a log line or the output."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import netaddr
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from inventory.audit import ProbeContext, ProbeOutcome, ProbeResult, Target, audit
from inventory.audit.probes.base import PortState, ServiceObservation
from inventory.audit.probes.dicom import (
    FIND_CAP,
    OPEN_ASSOCIATION,
    QUERY_WITHOUT_AUTHORIZATION,
    Dicom,
    identify_product,
)
from inventory.settings import load_settings
from inventory.validators import ExpectedService
from tests.audit import peers

TIMEOUT = 1.0
SYNTHETIC = [
    ("SYNTHETIC^ALPHA", "SYN-0001", "19700101"),
    ("SYNTHETIC^BRAVO", "SYN-0002", "19710202"),
    ("SYNTHETIC^CHARLIE", "SYN-0003", "19720303"),
    ("SYNTHETIC^DELTA", "SYN-0004", "19730404"),
]
SECRETS = [s for row in SYNTHETIC for s in row[:2]] + ["SYNTHETIC", "SYN-000"]
_hosts = itertools.count(1)


def audit_settings(**changes: Any) -> Any:
    """The [audit] settings with short timeouts (not imported from test_engine: importing it
    registers that module's deliberately broken probes)."""
    base = load_settings(environ={}).audit
    return base.model_copy(
        update={"default_ports": [], "connect_timeout": TIMEOUT, "read_timeout": TIMEOUT, **changes}
    )


def dicom_host() -> str:
    """This module's own loopback addresses, clear of the ones tests/audit/peers.py hands out."""
    n = next(_hosts)
    return f"127.42.{200 + n // 250}.{n % 250 + 1}"


def ctx_for(host: str, port: int, service: str = "dicom") -> ProbeContext:
    ctx = ProbeContext(connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    ctx.observed = [ServiceObservation(host, port, PortState.open, service=service)]
    return ctx


def target(host: str, port: int | None = None, ae_titles: tuple[str, ...] = ()) -> Target:
    services = (ExpectedService(port, "tcp", "dicom"),) if port else ()
    return Target("pacs", (netaddr.IPAddress(host),), services=services, ae_titles=ae_titles)


def probe(host: str, port: int, ae_titles: tuple[str, ...] = ()) -> ProbeResult:
    result: ProbeResult = asyncio.run(
        Dicom().check(target(host, port, ae_titles), ctx_for(host, port))
    )
    return result


def checks_of(result: ProbeResult) -> dict[str, Any]:
    return {f.check: f for f in result.findings}


# --- pynetdicom SCPs ------------------------------------------------------------------------


def _synthetic_find(event: Any, copies: int = 1) -> Iterator[tuple[int, Dataset | None]]:
    """A careless PACS: answers any query with every patient, names and IDs included."""
    for name, patient_id, birth in SYNTHETIC * copies:
        if event.is_cancelled:
            yield 0xFE00, None
            return
        ds = Dataset()
        ds.QueryRetrieveLevel = event.identifier.QueryRetrieveLevel
        ds.PatientName = name
        ds.PatientID = patient_id
        ds.PatientBirthDate = birth
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate = f"{date.today():%Y%m%d}"
        yield 0xFF00, ds


@dataclass
class Scp:
    host: str
    port: int


@pytest.fixture
def pynetdicom_scp() -> Iterator[Any]:
    servers: list[Any] = []

    def start(
        require_calling_aet: list[str] | None = None,
        port: int = 0,
        copies: int = 1,
        own_title: str | None = None,
        ssl_context: Any = None,
    ) -> Scp:
        """An SCP open to any calling AE; with `own_title`, it answers only when called by that
        title (as most PACS do); with `ssl_context`, it speaks DICOM over TLS."""
        ae = AE(ae_title=own_title or "SYNPACS")
        for uid in (
            Verification,
            PatientRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelMove,
        ):
            ae.add_supported_context(uid)
        ae.require_called_aet = own_title is not None
        if require_calling_aet:
            ae.require_calling_aet = require_calling_aet
        host = dicom_host()
        server = ae.start_server(
            (host, port),
            block=False,
            evt_handlers=[(evt.EVT_C_FIND, _synthetic_find, [copies])],
            ssl_context=ssl_context,
        )
        assert server is not None
        servers.append(server)
        return Scp(host, server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()


def test_an_open_pacs_answering_queries_is_both_findings_and_leaks_nothing(
    pynetdicom_scp, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    scp = pynetdicom_scp()
    result = probe(scp.host, scp.port)

    assert result.outcome is ProbeOutcome.ran, result.reason
    assert result.checks == {OPEN_ASSOCIATION, QUERY_WITHOUT_AUTHORIZATION}
    found = checks_of(result)
    assert found[OPEN_ASSOCIATION].severity == "high"
    query = found[QUERY_WITHOUT_AUTHORIZATION]
    assert query.severity == "critical" and query.port == scp.port
    assert query.evidence["matches"] == len(SYNTHETIC)
    assert query.evidence["called_ae"] == "ANY-SCP"
    assert query.evidence["echo_ok"] is True
    assert {"PatientName", "PatientID", "StudyInstanceUID"} <= set(query.evidence["attributes"])
    assert (
        "Study Root Query/Retrieve Information Model - MOVE"
        in (query.evidence["retrieval_contexts_accepted"])
    )
    [service] = result.services
    assert (service.product, service.service) == ("pynetdicom", "dicom")
    assert service.version and service.version[0].isdigit()

    # Privacy: not a single name or identifier, anywhere.
    out = capsys.readouterr()
    everywhere = "\n".join(
        [
            repr(result),
            repr([f.evidence for f in result.findings]),
            caplog.text,
            "\n".join(r.getMessage() for r in caplog.records),
            out.out,
            out.err,
        ]
    )
    for secret in SECRETS + ["19700101"]:
        assert secret not in everywhere


def test_a_pacs_with_many_records_is_counted_up_to_the_cap_then_cancelled(pynetdicom_scp):
    scp = pynetdicom_scp(copies=100)  # 400 matches on offer
    started = time.monotonic()
    result = probe(scp.host, scp.port)
    assert time.monotonic() - started < 2 * TIMEOUT
    evidence = checks_of(result)[QUERY_WITHOUT_AUTHORIZATION].evidence
    assert evidence["matches"] == FIND_CAP and evidence["matches_capped"] is True
    assert "50+" in checks_of(result)[QUERY_WITHOUT_AUTHORIZATION].title


def test_a_pacs_that_accepts_only_known_calling_aes_is_no_finding(pynetdicom_scp):
    scp = pynetdicom_scp(require_calling_aet=["KNOWNMOD"])
    result = probe(scp.host, scp.port, ae_titles=("SYNPACS",))
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert result.findings == []
    assert result.checks == {OPEN_ASSOCIATION, QUERY_WITHOUT_AUTHORIZATION}  # can mark fixed


# --- dcmtk dcmqrscp -------------------------------------------------------------------------

BIND_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = dlsym(RTLD_NEXT, "bind");
    const char *to = getenv("VIGIE_TEST_BIND");
    if (to && addr && addr->sa_family == AF_INET) {
        struct sockaddr_in copy = *(const struct sockaddr_in *)addr;
        if (copy.sin_addr.s_addr == htonl(INADDR_ANY)) {
            inet_pton(AF_INET, to, &copy.sin_addr);
            return real(fd, (const struct sockaddr *)&copy, sizeof copy);
        }
    }
    return real(fd, addr, len);
}
"""


@pytest.fixture(scope="module")
def bind_shim(tmp_path_factory) -> Path:
    """dcmqrscp 3.6.7 listens on every interface; this LD_PRELOAD shim keeps it on its own
    loopback address, so nothing outside 127.0.0.0/8 ever sees the test archive."""
    if not shutil.which("dcmqrscp") or not shutil.which("gcc"):
        pytest.skip("dcmtk's dcmqrscp and gcc are needed for the dcmtk peers")
    folder = tmp_path_factory.mktemp("shim")
    (folder / "bind.c").write_text(BIND_SHIM)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(folder / "bind.so"), str(folder / "bind.c"), "-ldl"],
        check=True,
        capture_output=True,
    )
    return folder / "bind.so"


def _synthetic_study(folder: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = SYNTHETIC[0]
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = f"{date.today():%Y%m%d}"
    ds.StudyTime = "101010"
    ds.StudyID = "1"
    ds.AccessionNumber = "SYN-ACC-1"
    ds.Modality = "OT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    path = folder / "synthetic.dcm"
    ds.save_as(path, enforce_file_format=True)
    subprocess.run(["dcmqridx", str(folder), str(path)], check=True, capture_output=True)


@pytest.fixture
def dcmqrscp(bind_shim, tmp_path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(known_only: bool = False, with_study: bool = False) -> Scp:
        host = dicom_host()
        port = peers.free_port(host)
        storage = tmp_path / f"db{len(processes)}"
        storage.mkdir()
        if with_study:
            _synthetic_study(storage)
        hosts = "known = (KNOWNMOD, 127.0.0.1, 104)\n" if known_only else ""
        config = tmp_path / f"dcmqrscp{len(processes)}.cfg"
        config.write_text(
            f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n"
            f"HostTable BEGIN\n{hosts}HostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            "AETable BEGIN\n"
            f"PACS {storage} RW (10, 64mb) {'known' if known_only else 'ANY'}\n"
            "AETable END\n"
        )
        process = subprocess.Popen(
            ["dcmqrscp", "--single-process", "-c", str(config)],
            env={"LD_PRELOAD": str(bind_shim), "VIGIE_TEST_BIND": host, "PATH": "/usr/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        _wait_listening(host, port)
        return Scp(host, port)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_listening(host: str, port: int) -> None:
    import socket

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"dcmqrscp did not listen on {host}:{port}")


def test_dcmtk_archive_open_to_any_ae_is_found_and_identified(dcmqrscp, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    scp = dcmqrscp(with_study=True)
    result = probe(scp.host, scp.port, ae_titles=("PACS",))
    assert result.outcome is ProbeOutcome.ran, result.reason
    found = checks_of(result)
    assert found[OPEN_ASSOCIATION].evidence["called_ae"] == "PACS"
    assert found[OPEN_ASSOCIATION].evidence["implementation_version_name"].startswith("OFFIS_DCMTK")
    assert found[QUERY_WITHOUT_AUTHORIZATION].evidence["matches"] == 1
    [service] = result.services
    assert service.product == "dcmtk" and service.version.startswith("3.")
    out = capsys.readouterr()
    everywhere = repr(result) + caplog.text + out.out + out.err
    assert "SYNTHETIC" not in everywhere and "SYN-0001" not in everywhere


def test_dcmtk_archive_restricted_to_known_aes_is_no_finding(dcmqrscp):
    scp = dcmqrscp(known_only=True)
    result = probe(scp.host, scp.port, ae_titles=("PACS",))
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert result.findings == []
    assert result.checks == {OPEN_ASSOCIATION, QUERY_WITHOUT_AUTHORIZATION}


# --- hostile peers, selection, engine ------------------------------------------------------


async def _closes_after_the_request(reader: asyncio.StreamReader, writer: Any) -> None:
    await reader.read(6)  # the A-ASSOCIATE-RQ's header: then FIN, no answer
    writer.close()


async def _aborts_the_request(reader: asyncio.StreamReader, writer: Any) -> None:
    await reader.read(6)
    writer.write(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]))  # A-ABORT, service provider
    await writer.drain()
    await asyncio.sleep(2)


@pytest.mark.parametrize(
    ("hostile", "why"),
    [
        ("silent", "no answer to the association request within 1s"),
        ("reset", "the peer reset the connection without answering the association request"),
        ("flood", "the peer answered with something that is not DICOM"),
        (
            _closes_after_the_request,
            "the peer closed the connection without answering the association request",
        ),
        (_aborts_the_request, "the peer aborted the association request (A-ABORT)"),
        (None, "the connection was refused"),  # seen open, closed since
    ],
)
def test_a_hostile_peer_on_a_dicom_port_fails_in_bounded_time_and_says_why(hostile, why):
    async def scenario() -> tuple[ProbeResult, float, str, int]:
        handler = getattr(peers, hostile) if isinstance(hostile, str) else hostile
        host = dicom_host()
        if handler is None:
            port = peers.free_port(host)
            return await Dicom().check(target(host, port), ctx_for(host, port)), 0.0, host, port
        server, host, port = await peers.serve(handler, host=host)
        async with server:
            started = time.monotonic()
            result = await Dicom().check(target(host, port, ("PACS",)), ctx_for(host, port))
            return result, time.monotonic() - started, host, port

    result, elapsed, host, port = asyncio.run(scenario())
    assert elapsed < 2 * (TIMEOUT + TIMEOUT), f"{hostile} held the probe {elapsed:.1f}s"
    assert result.outcome is ProbeOutcome.failed
    assert result.reason == f"{host}:{port}: {why}"
    assert result.checks == set() and result.findings == []


def test_a_peer_accepting_none_of_the_proposed_services_says_so():
    """A storage-only SCP accepts the association but no context: pynetdicom then aborts it
    itself, which is not the peer closing or answering something else."""
    ae = AE(ae_title="STORESCP")
    ae.add_supported_context(SecondaryCaptureImageStorage)
    host = dicom_host()
    server = ae.start_server((host, 0), block=False)
    try:
        result = probe(host, server.server_address[1])
    finally:
        server.shutdown()
    assert result.outcome is ProbeOutcome.failed
    assert result.reason.endswith(
        "the peer accepted the association but none of the services proposed "
        "(Verification, query, retrieval)"
    )


@contextmanager
def descriptors_taken_below(number: int) -> Iterator[None]:
    """Every file descriptor below `number` in use (as in a process auditing hundreds of hosts
    at once), so the next socket gets a number past select()'s limit (FD_SETSIZE, 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < number + 64:
        pytest.skip(f"the open-file limit ({hard}) is below {number + 64}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, number + 64), hard))
    taken = [os.open(os.devnull, os.O_RDONLY)]
    try:
        while taken[-1] < number - 1:
            taken.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_association_on_a_descriptor_past_1024_still_finds_the_open_archive(dcmqrscp):
    """pynetdicom watches its socket with select(), which refuses descriptors numbered 1024 or
    more; it took that for the peer closing, and the audit of a whole fleet (1,000 connections
    at once) reported about 2 % of its open DICOM services as 'no DICOM answer'."""
    scp = dcmqrscp()  # another process: its own descriptors stay low
    with descriptors_taken_below(1030):
        spare = os.dup(0)
        os.close(spare)
        assert spare >= 1024  # the probe's socket will be numbered past select()'s limit
        result = probe(scp.host, scp.port, ae_titles=("PACS",))
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert OPEN_ASSOCIATION in checks_of(result)


def test_only_dicom_ports_are_probed_and_nothing_open_means_nothing_holds():
    ctx = ProbeContext(connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    ctx.observed = [
        ServiceObservation("127.42.250.1", 4242, PortState.closed, service="dicom"),
        ServiceObservation("127.42.250.1", 104, PortState.open, service="ssh"),  # not DICOM
        ServiceObservation("127.42.250.1", 8080, PortState.open, service="http"),
    ]
    started = time.monotonic()
    result = asyncio.run(Dicom().check(target("127.42.250.1"), ctx))
    assert time.monotonic() - started < 0.5  # no connection attempted
    assert result.outcome is ProbeOutcome.ran and result.findings == []
    assert result.checks == {OPEN_ASSOCIATION, QUERY_WITHOUT_AUTHORIZATION}


def test_the_engine_finds_an_open_pacs_end_to_end(pynetdicom_scp):
    scp = pynetdicom_scp(port=4242)  # its own address, so the well-known port is free
    settings = audit_settings(default_ports=[4242, 11112])
    report = asyncio.run(
        audit(Target("pacs", (netaddr.IPAddress(scp.host),)), settings, probes=["dicom"])
    )
    dicom = next(r for r in report.results if r.probe == "dicom")
    assert dicom.outcome is ProbeOutcome.ran, dicom.reason
    # Nothing declared: 4242 is DICOM by its number; 11112 is closed and not probed.
    found = {(f.check, f.port) for f in report.findings}
    assert (OPEN_ASSOCIATION, scp.port) in found
    assert (QUERY_WITHOUT_AUTHORIZATION, scp.port) in found
    assert {OPEN_ASSOCIATION, QUERY_WITHOUT_AUTHORIZATION} <= report.checks_run


@pytest.mark.parametrize(
    ("uid", "name", "expected"),
    [
        ("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367", ("dcmtk", "3.6.7")),
        ("1.2.826.0.1.3680043.9.3811.3.0.4", "PYNETDICOM_304", ("pynetdicom", "3.0.4")),
        ("1.2.40.0.13.1.3", "dcm4che-5.31.0", ("dcm4che", "5.31.0")),
        ("1.2.276.0.7230010.3.0.3.6.7", "ORTHANC_1.12.3", ("Orthanc", "1.12.3")),
        ("1.2.3.4", "ACME", ("", "")),
    ],
)
def test_products_are_named_from_the_implementation_identification(uid, name, expected):
    assert identify_product(uid, name) == expected


# --- DICOM over TLS, and the optional AE-title guessing ----------------------------------------


def test_an_open_pacs_behind_dicom_tls_on_2762_is_probed_over_tls(pynetdicom_scp, tmp_path):
    from tests.audit import webpeers

    context = webpeers.server_context(webpeers.make_cert("pacs.clinic.local"), tmp_path)
    scp = pynetdicom_scp(port=2762, ssl_context=context)  # undeclared: DICOM-TLS by its number
    settings = audit_settings(default_ports=[2762])
    report = asyncio.run(
        audit(Target("pacs", (netaddr.IPAddress(scp.host),)), settings, probes=["dicom"])
    )
    dicom = next(r for r in report.results if r.probe == "dicom")
    assert dicom.outcome is ProbeOutcome.ran, dicom.reason
    assert {(f.check, f.port) for f in report.findings} >= {(OPEN_ASSOCIATION, 2762)}


def test_a_plain_dicom_service_on_the_tls_port_number_is_still_probed(pynetdicom_scp):
    scp = pynetdicom_scp(port=2762)
    result = asyncio.run(
        Dicom().check(target(scp.host), ctx_for(scp.host, scp.port, service="dicom-tls"))
    )
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert OPEN_ASSOCIATION in checks_of(result)


def guessing_target(host: str, port: int, options: frozenset[str]) -> Target:
    return Target(
        "pacs",
        (netaddr.IPAddress(host),),
        services=(ExpectedService(port, "tcp", "dicom"),),
        ae_titles=("RADIOPACS",),  # declared wrongly: the PACS answers only to ORTHANC
        options=options,
    )


def test_ae_title_guessing_is_off_by_default(pynetdicom_scp):
    scp = pynetdicom_scp(own_title="ORTHANC")
    result = asyncio.run(
        Dicom().check(guessing_target(scp.host, scp.port, frozenset()), ctx_for(scp.host, scp.port))
    )
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert result.findings == []  # RADIOPACS and ANY-SCP were refused; nothing else was tried


def test_ae_title_guessing_finds_a_pacs_answering_to_its_factory_title(pynetdicom_scp):
    scp = pynetdicom_scp(own_title="ORTHANC")
    result = asyncio.run(
        Dicom().check(
            guessing_target(scp.host, scp.port, frozenset({"ae-title-guessing"})),
            ctx_for(scp.host, scp.port),
        )
    )
    assert result.outcome is ProbeOutcome.ran, result.reason
    found = checks_of(result)[OPEN_ASSOCIATION]
    assert found.evidence["called_ae"] == "ORTHANC"
    assert found.evidence["called_ae_guessed"] is True
    assert "ORTHANC" in found.title
    assert QUERY_WITHOUT_AUTHORIZATION in checks_of(result)  # the guessed title opened FIND too


def test_ae_title_guessing_stops_after_its_short_list(pynetdicom_scp):
    from inventory.audit.probes.dicom import GUESSED_CALLED_AES

    calls: list[str] = []
    scp = pynetdicom_scp(own_title="SECRETTITLE")

    import inventory.audit.probes.dicom as dicom_module

    real = dicom_module._associate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[3])
        return real(*args, **kwargs)

    dicom_module._associate = counting
    try:
        result = asyncio.run(
            Dicom().check(
                guessing_target(scp.host, scp.port, frozenset({"ae-title-guessing"})),
                ctx_for(scp.host, scp.port),
            )
        )
    finally:
        dicom_module._associate = real
    assert result.findings == [] and result.outcome is ProbeOutcome.ran
    assert calls == ["RADIOPACS", "ANY-SCP", *GUESSED_CALLED_AES]
