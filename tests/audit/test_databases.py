"""The database probes: Redis against real redis-server instances started here (with and without
a password), Elasticsearch and MongoDB against wire-protocol fixtures (neither can be installed
here), hostile peers on declared ports, and one end-to-end audit with all of them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import netaddr
import pytest

from inventory.audit import Probe, ProbeOutcome, Target, audit
from inventory.settings import load_settings
from inventory.validators import ExpectedService
from tests.audit import peers


def audit_settings(**changes: Any) -> Any:
    """Short timeouts; not test_engine's helper: importing it registers its test probes."""
    base = load_settings(environ={}).audit
    return base.model_copy(
        update={"default_ports": [], "connect_timeout": 1.0, "read_timeout": 1.0, **changes}
    )


REDIS = shutil.which("redis-server")
SECRET_VALUE = "DUPONT Jean 1950-01-01"  # a synthetic patient record: never in a report
NO_AUTH = "database.no-authentication"


def _result(report: Any, probe: str) -> Any:
    return next(r for r in report.results if r.probe == probe)


def _no_auth(report: Any) -> list[Any]:
    return [f for f in report.findings if f.check == NO_AUTH]


def _run(host: str, port: int, probe: str, declared: str = "") -> Any:
    services = (ExpectedService(port, "tcp", declared),) if declared else ()
    target = Target("db", (netaddr.IPAddress(host),), services=services)
    settings = audit_settings(default_ports=[] if declared else [port])
    return asyncio.run(audit(target, settings, probes=[probe]))


# --- Redis: real redis-server processes, our own, on their own addresses ---------------------


def _resp(host: str, port: int, *commands: list[str]) -> None:
    """Sends RESP commands to our own test instance (to seed one key before the audit)."""
    with socket.create_connection((host, port), timeout=2) as sock:
        for words in commands:
            sock.sendall(
                f"*{len(words)}\r\n".encode()
                + b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words)
            )
            sock.recv(4096)


def _redis(host: str, password: str = "") -> Iterator[tuple[str, int]]:
    assert REDIS
    port = peers.free_port(host)
    args = [REDIS, "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no"]
    args += ["--daemonize", "no", "--dir", "/tmp"]
    if password:
        args += ["--requirepass", password]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield host, port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def open_redis() -> Iterator[tuple[str, int]]:
    if not REDIS:
        pytest.skip("redis-server is not installed")
    for host, port in _redis("127.42.151.1"):
        _resp(host, port, ["SET", "patient:1", SECRET_VALUE], ["SET", "patient:2", SECRET_VALUE])
        yield host, port


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[tuple[str, int]]:
    if not REDIS:
        pytest.skip("redis-server is not installed")
    yield from _redis("127.42.151.2", password="s3cret-for-tests")


def test_redis_without_password_is_critical_with_version_and_counts(open_redis):
    host, port = open_redis
    report = _run(host, port, "redis", declared="redis")
    assert _result(report, "redis").outcome is ProbeOutcome.ran
    [finding] = _no_auth(report)
    assert finding.severity == "critical" and finding.port == port
    assert finding.evidence["product"] == "Redis"
    assert finding.evidence["version"].count(".") == 2
    assert finding.evidence["key_count"] == 2 and finding.evidence["databases"] == ["db0"]
    [service] = _result(report, "redis").services
    assert service.product == "Redis" and service.version == finding.evidence["version"]
    assert "DUPONT" not in repr(report) and "patient:1" not in repr(report)


def test_redis_with_password_has_no_finding_but_was_checked(locked_redis):
    host, port = locked_redis
    report = _run(host, port, "redis", declared="redis")
    assert _result(report, "redis").outcome is ProbeOutcome.ran
    assert _no_auth(report) == []
    assert NO_AUTH in report.checks_run


# --- Elasticsearch: a wire-protocol fixture (Elasticsearch cannot be installed here) --------


def elasticsearch_fixture(require_auth: bool, chunked: bool = False) -> peers.Handler:
    """A FIXTURE, not Elasticsearch: an asyncio HTTP/1.1 server answering `/` and
    `/_cat/indices?format=json` with the JSON shapes Elasticsearch 8 sends, or 401 with
    `WWW-Authenticate` when `require_auth` (as ES does with security on)."""

    root: dict[str, Any] = {
        "name": "node-1",
        "cluster_name": "pacs-search",
        "cluster_uuid": "x1Y2z3",
        "version": {"number": "7.17.9", "build_flavor": "default", "lucene_version": "8.11.1"},
        "tagline": "You Know, for Search",
    }
    indices = [
        {"index": "patients-2024", "docs.count": "1200"},
        {"index": "studies", "docs.count": "5300"},
        {"index": ".kibana_1", "docs.count": "4"},
    ]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ")[1].decode()
        body: Any
        if require_auth:
            status, body = "401 Unauthorized", {"error": "missing authentication credentials"}
        elif path == "/":
            status, body = "200 OK", root
        elif path.startswith("/_cat/indices"):
            status, body = "200 OK", indices
        else:
            status, body = "404 Not Found", {"error": "no handler"}
        data = json.dumps(body).encode()
        head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        if require_auth:
            head += 'WWW-Authenticate: Basic realm="security" charset="UTF-8"\r\n'
        if chunked:
            half = len(data) // 2
            payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (data[:half], data[half:]))
            writer.write(
                f"{head}transfer-encoding: chunked\r\n\r\n".encode() + payload + b"0\r\n\r\n"
            )
        else:
            writer.write(f"{head}content-length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()
        writer.close()

    return handle


@pytest.mark.parametrize("chunked", [False, True])
def test_elasticsearch_without_security_is_critical_with_index_names(chunked):
    async def declared() -> Any:
        server, host, port = await peers.serve(
            elasticsearch_fixture(require_auth=False, chunked=chunked), host="127.42.152.1"
        )
        async with server:
            target = Target(
                "search",
                (netaddr.IPAddress(host),),
                services=(ExpectedService(port, "tcp", "elasticsearch"),),
            )
            return await audit(target, audit_settings(default_ports=[]), probes=["elasticsearch"])

    report = asyncio.run(declared())
    assert _result(report, "elasticsearch").outcome is ProbeOutcome.ran
    [finding] = _no_auth(report)
    assert finding.severity == "critical"
    assert (
        finding.evidence["product"] == "Elasticsearch" and finding.evidence["version"] == "7.17.9"
    )
    assert finding.evidence["index_count"] == 3
    assert sorted(finding.evidence["indices"]) == [".kibana_1", "patients-2024", "studies"]
    assert finding.evidence["document_count"] == 6504
    [service] = _result(report, "elasticsearch").services
    assert (service.product, service.version) == ("Elasticsearch", "7.17.9")


def test_elasticsearch_with_security_has_no_finding():
    async def scenario() -> Any:
        server, host, port = await peers.serve(
            elasticsearch_fixture(require_auth=True), host="127.42.152.2"
        )
        async with server:
            target = Target(
                "search",
                (netaddr.IPAddress(host),),
                services=(ExpectedService(port, "tcp", "elasticsearch"),),
            )
            return await audit(target, audit_settings(default_ports=[]), probes=["elasticsearch"])

    report = asyncio.run(scenario())
    assert _result(report, "elasticsearch").outcome is ProbeOutcome.ran
    assert _no_auth(report) == [] and NO_AUTH in report.checks_run


# --- MongoDB: a wire-protocol fixture (MongoDB cannot be installed here) ----------------------


def _bson(doc: dict[str, Any]) -> bytes:
    """The fixture's own BSON encoder (independent of the probe's), with the raw types MongoDB
    puts in its answers: ObjectId, UTC datetime, int64, double, bool, documents, arrays."""
    out = b""
    for key, value in doc.items():
        name = key.encode() + b"\x00"
        if isinstance(value, tuple) and value[0] == "oid":
            out += b"\x07" + name + value[1]
        elif isinstance(value, tuple) and value[0] == "date":
            out += b"\x09" + name + struct.pack("<q", value[1])
        elif isinstance(value, tuple) and value[0] == "int64":
            out += b"\x12" + name + struct.pack("<q", value[1])
        elif isinstance(value, bool):
            out += b"\x08" + name + bytes([value])
        elif isinstance(value, int):
            out += b"\x10" + name + struct.pack("<i", value)
        elif isinstance(value, float):
            out += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\x00"
            out += b"\x02" + name + struct.pack("<i", len(raw)) + raw
        elif isinstance(value, list):
            out += b"\x04" + name + _bson({str(i): v for i, v in enumerate(value)})
        else:
            out += b"\x03" + name + _bson(value)
    return struct.pack("<i", len(out) + 5) + out + b"\x00"


def _first_key(document: bytes) -> str:
    return document[5 : document.index(b"\x00", 5)].decode()


def mongodb_fixture(require_auth: bool) -> peers.Handler:
    """A FIXTURE, not MongoDB: an asyncio server speaking real OP_MSG (opcode 2013) with BSON
    answers shaped like MongoDB 6's for hello, buildInfo and listDatabases; with `require_auth`
    listDatabases fails with code 13 "requires authentication", as mongod does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                length, request_id, _, opcode = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
                assert opcode == 2013 and body[4] == 0
                command = _first_key(body[5:])
                if command == "hello":
                    reply: dict[str, Any] = {
                        "isWritablePrimary": True,
                        "topologyVersion": {
                            "processId": ("oid", b"\x01" * 12),
                            "counter": ("int64", 0),
                        },
                        "maxBsonObjectSize": 16777216,
                        "localTime": ("date", 1_700_000_000_000),
                        "maxWireVersion": 17,
                        "minWireVersion": 0,
                        "readOnly": False,
                        "ok": 1.0,
                    }
                elif command == "buildInfo":
                    reply = {"version": "6.0.4", "versionArray": [6, 0, 4, 0], "ok": 1.0}
                elif command == "listDatabases" and require_auth:
                    reply = {
                        "ok": 0.0,
                        "errmsg": "command listDatabases requires authentication",
                        "code": 13,
                        "codeName": "Unauthorized",
                    }
                elif command == "listDatabases":
                    names = ["admin", "config", "local", "pacs_index"]
                    reply = {"databases": [{"name": n} for n in names], "ok": 1.0}
                else:
                    reply = {"ok": 0.0, "errmsg": f"no such command: '{command}'", "code": 59}
                payload = struct.pack("<I", 0) + b"\x00" + _bson(reply)
                writer.write(
                    struct.pack("<iiii", 16 + len(payload), 77, request_id, 2013) + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handle


@pytest.mark.parametrize("require_auth", [False, True])
def test_mongodb_fixture(require_auth):
    async def scenario() -> Any:
        server, host, port = await peers.serve(
            mongodb_fixture(require_auth), host=f"127.42.153.{1 + require_auth}"
        )
        async with server:
            target = Target(
                "mongo",
                (netaddr.IPAddress(host),),
                services=(ExpectedService(port, "tcp", "mongodb"),),
            )
            return await audit(target, audit_settings(default_ports=[]), probes=["mongodb"])

    report = asyncio.run(scenario())
    result = _result(report, "mongodb")
    assert result.outcome is ProbeOutcome.ran, result.reason
    assert NO_AUTH in report.checks_run
    [service] = result.services
    assert (service.product, service.version) == ("MongoDB", "6.0.4")
    if require_auth:
        assert _no_auth(report) == []
    else:
        [finding] = _no_auth(report)
        assert finding.severity == "critical"
        assert finding.evidence["databases"] == ["admin", "config", "local", "pacs_index"]
        assert finding.evidence["database_count"] == 4


# --- Hostile peers on declared database ports -------------------------------------------------


@pytest.mark.parametrize("probe", ["redis", "elasticsearch", "mongodb"])
@pytest.mark.parametrize("hostile", ["silent", "flood", "reset", "drip"])
def test_hostile_peer_on_a_declared_database_port_fails_in_bounded_time(probe, hostile):
    async def scenario() -> Any:
        server, host, port = await peers.serve(getattr(peers, hostile), host="127.42.154.1")
        async with server:
            target = Target(
                "db", (netaddr.IPAddress(host),), services=(ExpectedService(port, "tcp", probe),)
            )
            started = time.monotonic()
            report = await audit(target, audit_settings(default_ports=[]), probes=[probe])
            return report, time.monotonic() - started

    report, elapsed = asyncio.run(scenario())
    assert elapsed < 6, f"{hostile} held the {probe} probe for {elapsed:.1f}s"
    result = _result(report, probe)
    assert result.outcome is ProbeOutcome.failed and result.reason
    assert not result.checks and not result.findings


# --- End to end: one asset with every database and the FTP-less rest of the engine ------------


def test_end_to_end_audit_of_a_host_with_every_database(open_redis):
    redis_host, redis_port = open_redis

    async def scenario() -> Any:
        host = "127.42.155.1"
        es, _, es_port = await peers.serve(elasticsearch_fixture(False), host=host)
        mongo, _, mongo_port = await peers.serve(mongodb_fixture(False), host=host)
        target = Target(
            "imaging-db",
            (netaddr.IPAddress(host), netaddr.IPAddress(redis_host)),
            services=(
                ExpectedService(es_port, "tcp", "elasticsearch"),
                ExpectedService(mongo_port, "tcp", "mongodb"),
                ExpectedService(redis_port, "tcp", "redis"),
            ),
        )
        async with es, mongo:
            # every real probe, not the test ones another module may have registered
            real = [name for name in Probe.registry if not name.startswith("test-")]
            return await audit(target, audit_settings(default_ports=[]), probes=real)

    report = asyncio.run(scenario())
    for probe in ("redis", "elasticsearch", "mongodb", "ftp"):
        assert _result(report, probe).outcome is ProbeOutcome.ran
    products = sorted(f.evidence["product"] for f in _no_auth(report))
    assert products == ["Elasticsearch", "MongoDB", "Redis"]
    # No FTP on a host that answered: the FTP checks are judged (and hold nowhere).
    assert _result(report, "ftp").checks == {"ftp.anonymous-login", "ftp.cleartext"}
    assert not _result(report, "ftp").findings
    assert "DUPONT" not in repr(report)
