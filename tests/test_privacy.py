"""The privacy rule over a whole run (PRODUCT.md): real peers full of synthetic patients are
audited by the `inventory` command, then everything Vigie keeps or shows is searched for them:
every database row, the SQLite file itself, the command's output and logs, the web pages, the
exports, and every file the run wrote. Each peer really leaks (each gets its finding), so the
search is meaningful. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)
from sqlalchemy import text
from sqlmodel import SQLModel

from inventory import create_app
from inventory.settings import load_settings
from tests import test_cli
from tests.audit import webpeers
from tests.conftest import TEST_SECRET, FormClient
from tests.factories import PASSWORD, make_user
from tests.loopback import asyncio_peer
from tests.test_cli import Cli

databases = test_cli.databases
cli = test_cli.cli

# One token no real word contains: every synthetic value carries it, the search looks for it.
CANARY = "QZCANARY"
PATIENTS = [
    (f"{CANARY}^ALPHA^JEAN", f"{CANARY}-ID-0001", "19700101"),
    (f"{CANARY}^BRAVO^MARIE", f"{CANARY}-ID-0002", "19710202"),
]
FAST = {
    "INVENTORY_AUDIT_CONNECT_TIMEOUT": "1",
    "INVENTORY_AUDIT_READ_TIMEOUT": "1",
    "INVENTORY_AUDIT_AUDIT_DEADLINE": "30",
    "INVENTORY_AUDIT_DEFAULT_PORTS": "",
}
HOSTS = {
    "pacs": "127.42.171.1",
    "viewer": "127.42.171.2",
    "nas": "127.42.171.3",
    "cache": "127.42.171.4",
}


# --- the leaking peers ---------------------------------------------------------------------


def _find_everything(event: Any) -> Iterator[tuple[int, Dataset | None]]:
    for name, patient_id, birth in PATIENTS:
        ds = Dataset()
        ds.QueryRetrieveLevel = event.identifier.QueryRetrieveLevel
        ds.PatientName = name
        ds.PatientID = patient_id
        ds.PatientBirthDate = birth
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate = f"{date.today():%Y%m%d}"
        ds.StudyDescription = f"{CANARY} CT THORAX"
        yield 0xFF00, ds


@pytest.fixture
def dicom_peer() -> Iterator[int]:
    ae = AE(ae_title="CANARYPACS")
    for uid in (
        Verification,
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
    ):
        ae.add_supported_context(uid)
    server = ae.start_server(
        (HOSTS["pacs"], 0), block=False, evt_handlers=[(evt.EVT_C_FIND, _find_everything)]
    )
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def web_peer() -> Iterator[int]:
    routes = webpeers.static(
        {
            "/": webpeers.html_route(f"Worklist - {PATIENTS[0][0]}"),
            "/system": webpeers.json_route({"Name": f"{CANARY}-SERVER", "Version": "1.12.1"}),
            "/patients": webpeers.json_route([p[1] for p in PATIENTS]),
            "/studies": webpeers.json_route([{"PatientName": p[0]} for p in PATIENTS]),
        }
    )

    async def start() -> tuple[Any, int]:
        return await webpeers.serve_http(routes, HOSTS["viewer"])

    with asyncio_peer(start) as (_server, port):
        yield port


def _wait_listening(host: str, port: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


@pytest.fixture
def ftp_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    vsftpd = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    if not os.path.exists(vsftpd):
        pytest.skip("vsftpd is not installed")
    tmp = tmp_path_factory.mktemp("privacy-ftp")
    root, empty = tmp / "root", tmp / "empty"
    root.mkdir(mode=0o755)
    empty.mkdir(mode=0o755)
    for name, patient_id, _ in PATIENTS:
        (root / f"{name.replace('^', '_')}_{patient_id}.dcm").write_text("synthetic\n")
    from tests.audit.peers import free_port

    port = free_port(HOSTS["nas"])
    config = tmp / "vsftpd.conf"
    config.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                f"listen_address={HOSTS['nas']}",
                f"listen_port={port}",
                "background=NO",
                "anonymous_enable=YES",
                "local_enable=NO",
                "write_enable=NO",
                f"anon_root={root}",
                f"secure_chroot_dir={empty}",
                "seccomp_sandbox=NO",
                "pasv_enable=YES",
                "xferlog_enable=NO",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [vsftpd, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_listening(HOSTS["nas"], port)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture
def redis_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("redis-server is not installed")
    from tests.audit.peers import free_port

    host = HOSTS["cache"]
    port = free_port(host)
    workdir = tmp_path_factory.mktemp("privacy-redis")
    proc = subprocess.Popen(
        [redis, "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no"]
        + ["--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_listening(host, port)
        with socket.create_connection((host, port), timeout=2) as sock:
            for patient_id, name in [(p[1], p[0]) for p in PATIENTS]:
                key, value = f"patient:{patient_id}", name
                sock.sendall(
                    b"*3\r\n$3\r\nSET\r\n"
                    + b"$%d\r\n%s\r\n" % (len(key), key.encode())
                    + b"$%d\r\n%s\r\n" % (len(value), value.encode())
                )
                sock.recv(100)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# --- where Vigie keeps or shows things ---------------------------------------------------------


def _database_text(cli: Cli) -> str:
    """Every row of every table, as text."""
    with cli.session() as session:
        parts = []
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(table.select()):
                parts.append(repr(tuple(row)))
        if cli.url.startswith("postgresql"):
            jobs = session.execute(
                text("SELECT to_regclass('apscheduler_jobs') IS NOT NULL")
            ).scalar()
            if jobs:
                parts.append(repr(session.execute(text("SELECT * FROM apscheduler_jobs")).all()))
    return "\n".join(parts)


def _files_under(*roots: Path) -> Iterator[tuple[Path, bytes]]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                yield path, path.read_bytes()


def _pages(cli: Cli, tmp_path: Path) -> dict[str, str]:
    settings = load_settings(
        {
            "general": {"environment": "test", "var_dir": str(tmp_path / "web-var")},
            "database": {"url": cli.url},
            "web": {"secret_key": TEST_SECRET},
        },
        environ={},
    )
    app = create_app(settings=settings)
    app.config["TESTING"] = True
    app.test_client_class = FormClient
    client: FormClient = app.test_client()  # type: ignore[assignment]
    with cli.session() as session:
        make_user(session, "admin", username="privacy-admin")
        asset_ids = [row[0] for row in session.execute(text("SELECT id FROM asset")).all()]
        finding_ids = [row[0] for row in session.execute(text("SELECT id FROM finding")).all()]
    assert client.login("privacy-admin", PASSWORD).status_code == 302
    urls = ["/assets", "/findings", "/assets/export.csv", "/assets/export.json"]
    urls += [f"/assets/{i}" for i in asset_ids] + [f"/findings/{i}" for i in finding_ids]
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.get_data(as_text=True)
    return pages


def test_no_patient_data_anywhere_after_a_whole_run(
    cli: Cli, tmp_path: Path, dicom_peer, web_peer, ftp_peer, redis_peer, caplog
):
    cli.seed(
        "name,addresses,expected_services,holds_patient_data\n"
        f"pacs,{HOSTS['pacs']},{dicom_peer}/tcp dicom,yes\n"
        f"viewer,{HOSTS['viewer']},{web_peer}/tcp http,yes\n"
        f"nas,{HOSTS['nas']},{ftp_peer}/tcp ftp,yes\n"
        f"cache,{HOSTS['cache']},{redis_peer}/tcp redis,no\n"
    )
    outputs = []
    audit = cli("audit", "run", "--all", env=FAST)
    assert audit.returncode == 0, audit.stderr
    outputs.append(audit.stdout + audit.stderr)
    for fmt in ("json", "csv", "table"):
        listed = cli("findings", "list", "--format", fmt)
        assert listed.returncode == 0, listed.stderr
        outputs.append(listed.stdout + listed.stderr)
    for args in (("assets", "list", "--format", "json"), ("assets", "export", "--format", "csv")):
        result = cli(*args)
        outputs.append(result.stdout + result.stderr)

    # Each peer did leak, and Vigie saw it: the search below is not vacuous.
    findings = json.loads(outputs[1])
    checks = {(f["asset"], f["check"]) for f in findings}
    assert {
        ("pacs", "dicom.query-without-authorization"),
        ("viewer", "http.no-authentication"),
        ("nas", "ftp.anonymous-login"),
        ("cache", "database.no-authentication"),
    } <= checks, checks

    pages = _pages(cli, tmp_path)
    places: dict[str, str] = {
        "database rows": _database_text(cli),
        "command output": "\n".join(outputs),
        "log records": "\n".join(r.getMessage() for r in caplog.records),
        **{f"page {url}": html for url, html in pages.items()},
    }
    for place, content in places.items():
        assert CANARY not in content.upper(), f"patient data in the {place}"
    for path, data in _files_under(cli.cwd, tmp_path):
        assert CANARY.encode() not in data.upper(), f"patient data in {path}"
    if cli.url.startswith("sqlite"):
        db_file = Path(cli.url.removeprefix("sqlite:///"))
        for path in db_file.parent.glob(db_file.name + "*"):  # the file, its WAL and journal
            assert CANARY.encode() not in path.read_bytes().upper(), f"patient data in {path}"


def test_the_canary_search_would_see_a_leak(cli: Cli, tmp_path: Path):
    """The same search finds the token when it is there (so a green run means something)."""
    cli.seed(f"name,addresses,notes\nleaky,127.42.171.9,{CANARY}^ALPHA\n")
    assert CANARY in _database_text(cli).upper()
    assert any(CANARY in html.upper() for html in _pages(cli, tmp_path).values())
    if cli.url.startswith("sqlite"):
        db_file = Path(cli.url.removeprefix("sqlite:///"))
        assert any(
            CANARY.encode() in p.read_bytes().upper()
            for p in db_file.parent.glob(db_file.name + "*")
        )
