"""Light asyncio responders for the benchmark fleet, one process per protocol family.

Each speaks just enough of its protocol for Vigie's probes and nmap's scripts (ftp-anon,
http-title, http-auth, ssl-cert, redis-info, dicom-ping, -sV) to reach a verdict:

- FTP: vsFTPd-like greeting, anonymous login allowed or refused, FEAT, PASV/EPSV, LIST/NLST.
- HTTP: an Orthanc-like viewer without authentication (`/`, `/system`, `/patients`), or a page
  that answers 401 with a Basic challenge; the latter also behind TLS (self-signed certificate).
  Anything that is not an HTTP request line (a TLS ClientHello, an nmap probe) gets 400.
- Redis: PING, INFO [section]; without password, or answering NOAUTH to everything.
- DICOM: an SCP accepting any AE title, Verification and Study/Patient Root FIND (no match),
  C-ECHO, C-FIND, release; retrieval contexts are refused.
- SSH: an OpenSSH greeting, then silence.

    python -m bench.fleet.responders --family ftp --hosts 1000 --network loopback

prints `ready N` (N listeners) once every socket listens, then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import resource
import signal
import socket
import ssl
import struct
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.fleet.spec import FAMILIES, LOOPBACK, WAN, build_fleet

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
IDLE = 20.0  # seconds a connection may stay silent before we close it
_ERRORS = (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError, ssl.SSLError,
           OSError, asyncio.LimitOverrunError)  # fmt: skip


def _guard(handler: Handler) -> Handler:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except _ERRORS:
            pass
        finally:
            writer.transport.abort()

    return run


# --- SSH ------------------------------------------------------------------------------------


async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u1\r\n")
    async with asyncio.timeout(IDLE):
        while await reader.read(4096):
            pass


# --- FTP ------------------------------------------------------------------------------------

_LISTING = (
    b"drwxr-xr-x    2 ftp      ftp          4096 Jan 01  2024 pub\r\n"
    b"-rw-r--r--    1 ftp      ftp           123 Jan 01  2024 README\r\n"
)
_NAMES = b"pub\r\nREADME\r\n"


def ftp(anonymous: bool) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        user = ""
        logged_in = False
        passive: tuple[asyncio.Server, asyncio.Future[asyncio.StreamWriter]] | None = None

        def send(text: str) -> None:
            writer.write(text.encode() + b"\r\n")

        send("220 (vsFTPd 3.0.3)")
        try:
            while True:
                async with asyncio.timeout(IDLE):
                    line = await reader.readline()
                if not line:
                    return
                verb, _, arg = line.decode("latin-1").strip().partition(" ")
                verb = verb.upper()
                if verb == "USER":
                    user = arg.strip().lower()
                    send("331 Please specify the password.")
                elif verb == "PASS":
                    if anonymous and user in ("anonymous", "ftp"):
                        logged_in = True
                        send("230 Login successful.")
                    else:
                        send("530 Login incorrect.")
                elif verb == "FEAT":
                    writer.write(b"211-Features:\r\n EPSV\r\n PASV\r\n SIZE\r\n211 End\r\n")
                elif verb == "SYST":
                    send("215 UNIX Type: L8")
                elif verb == "QUIT":
                    send("221 Goodbye.")
                    return
                elif not logged_in:
                    send("530 Please login with USER and PASS.")
                elif verb in ("PASV", "EPSV"):
                    if passive:
                        passive[0].close()
                    passive = await _passive(host)
                    port = passive[0].sockets[0].getsockname()[1]
                    if verb == "PASV":
                        h = host.replace(".", ",")
                        send(f"227 Entering Passive Mode ({h},{port >> 8},{port & 255}).")
                    else:
                        send(f"229 Entering Extended Passive Mode (|||{port}|)")
                elif verb in ("LIST", "NLST"):
                    if passive is None:
                        send("425 Use PORT or PASV first.")
                        continue
                    send("150 Here comes the directory listing.")
                    server, data = passive
                    passive = None
                    try:
                        async with asyncio.timeout(5):
                            data_writer = await data
                        data_writer.write(_LISTING if verb == "LIST" else _NAMES)
                        await data_writer.drain()
                        data_writer.close()
                        send("226 Directory send OK.")
                    except TimeoutError:
                        send("425 Failed to establish connection.")
                    finally:
                        server.close()
                elif verb == "PWD":
                    send('257 "/" is the current directory')
                elif verb == "TYPE":
                    send("200 Switching to Binary mode.")
                else:
                    send("500 Unknown command.")
        finally:
            if passive:
                passive[0].close()

    return handle


async def _passive(host: str) -> tuple[asyncio.Server, asyncio.Future[asyncio.StreamWriter]]:
    """A one-shot data listener on the control connection's own address."""
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[asyncio.StreamWriter] = loop.create_future()

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if connected.done():
            writer.transport.abort()
        else:
            connected.set_result(writer)

    server = await asyncio.start_server(accept, sock=_listener(host, 0, backlog=2))
    return server, connected


# --- HTTP -----------------------------------------------------------------------------------

_REQUEST = re.compile(rb"^[A-Z]{3,10} (\S+) HTTP/1\.([01])\r?$")
_METHOD = re.compile(rb"^[A-Z]{1,10}( |$)")  # what an HTTP request may start with
_ORTHANC_PAGE = (
    b"<!DOCTYPE html><html><head><title>Orthanc Explorer</title></head>"
    b"<body><div id='app'>Orthanc Explorer</div></body></html>"
)
_SYSTEM = json.dumps(
    {"Name": "ORTHANC", "Version": "1.12.1", "DicomAet": "ORTHANC", "DicomPort": 4242}
).encode()
_UNAUTHORIZED_PAGE = b"<html><head><title>401 Unauthorized</title></head><body></body></html>"


def _response(status: str, body: bytes, ctype: str, keep: bool, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nServer: nginx/1.18.0\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}"
        f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n"
    )
    return head.encode() + body


def http(open_data: bool) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        while True:
            async with asyncio.timeout(IDLE):
                while b"\r\n\r\n" not in buffer:
                    chunk = await reader.read(16384)
                    if not chunk or len(buffer) > 16384:
                        return
                    buffer += chunk
                    if not _METHOD.match(buffer[:12]):  # a ClientHello, an nmap probe: say so now
                        break
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            first, _, headers = head.partition(b"\n")
            match = _REQUEST.match(first)
            if not match:
                writer.write(_response("400 Bad Request", b"", "text/html", False))
                await writer.drain()
                return
            path = match.group(1).split(b"?")[0].decode("latin-1")
            keep = match.group(2) == b"1" and b"connection: close" not in headers.lower()
            if not open_data:
                writer.write(
                    _response(
                        "401 Unauthorized",
                        _UNAUTHORIZED_PAGE,
                        "text/html",
                        keep,
                        'WWW-Authenticate: Basic realm="Administration"\r\n',
                    )
                )
            elif path in ("/", "/app/explorer.html"):
                writer.write(_response("200 OK", _ORTHANC_PAGE, "text/html", keep))
            elif path == "/system":
                writer.write(_response("200 OK", _SYSTEM, "application/json", keep))
            elif path in ("/patients", "/studies"):
                writer.write(_response("200 OK", b'["6c2b1d44-0f4f1f0e-8b1c2f3d-a1b2c3d4"]',
                                       "application/json", keep))  # fmt: skip
            else:
                writer.write(_response("404 Not Found", b"", "text/plain", keep))
            await writer.drain()
            if not keep:
                return

    return handle


def _tls_context() -> ssl.SSLContext:
    """A self-signed ECDSA certificate for a NAS's admin page (cheap handshakes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nas.clinique.local")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="vigie-bench-tls-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
    return context


# --- Redis ----------------------------------------------------------------------------------

_INFO = {
    "server": "# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n"
    "os:Linux 5.10.0-26-amd64 x86_64\r\narch_bits:64\r\nprocess_id:812\r\n"
    "uptime_in_seconds:864000\r\n",
    "clients": "# Clients\r\nconnected_clients:3\r\n",
    "memory": "# Memory\r\nused_memory_human:1.02M\r\n",
    "replication": "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
    "cpu": "# CPU\r\nused_cpu_sys:12.5\r\nused_cpu_user:20.1\r\n",
    "keyspace": "# Keyspace\r\ndb0:keys=42,expires=0,avg_ttl=0\r\n",
}


async def _redis_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.split()  # inline command
    count = int(line[1:])
    if not 0 < count <= 16:
        raise ValueError("bad array")
    args = []
    for _ in range(count):
        header = await reader.readline()
        size = int(header[1:])
        if not header.startswith(b"$") or not 0 <= size <= 4096:
            raise ValueError("bad bulk")
        args.append((await reader.readexactly(size + 2))[:-2])
    return args


def redis(open_data: bool) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            async with asyncio.timeout(IDLE):
                args = await _redis_command(reader)
            if args is None:
                return
            if not args:
                continue
            verb = args[0].upper()
            if verb == b"QUIT":
                writer.write(b"+OK\r\n")
                return
            if not open_data and verb != b"AUTH":
                writer.write(b"-NOAUTH Authentication required.\r\n")
            elif verb == b"AUTH":
                writer.write(b"-ERR invalid password\r\n")
            elif verb == b"PING":
                writer.write(b"+PONG\r\n")
            elif verb == b"INFO":
                section = args[1].decode().lower() if len(args) > 1 else ""
                text = _INFO.get(section, "") if section else "\r\n".join(_INFO.values())
                data = text.encode()
                writer.write(b"$%d\r\n%s\r\n" % (len(data), data))
            else:
                writer.write(b"-ERR unknown command '%s'\r\n" % args[0][:32])
            await writer.drain()

    return handle


# --- DICOM ----------------------------------------------------------------------------------

VERIFICATION = "1.2.840.10008.1.1"
ACCEPTED = {
    VERIFICATION,
    "1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root FIND
    "1.2.840.10008.5.1.4.1.2.2.1",  # Study Root FIND
}
IMPLICIT_LE = "1.2.840.10008.1.2"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1045.1"
IMPLEMENTATION_VERSION = "BENCH_SCP_1"


def _item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode()
    return raw + b"\x00" if len(raw) % 2 else raw


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


def _command(fields: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(_element(e, v) for e, v in fields)
    return _element(0x0000, struct.pack("<I", len(body))) + body


def _parse_command(data: bytes) -> dict[int, bytes]:
    fields = {}
    offset = 0
    while offset + 8 <= len(data):
        group, element, size = struct.unpack_from("<HHI", data, offset)
        offset += 8
        if group == 0:
            fields[element] = data[offset : offset + size]
        offset += size
    return fields


async def _pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    async with asyncio.timeout(IDLE):
        kind, reserved, size = struct.unpack(">BBI", await reader.readexactly(6))
        if not 1 <= kind <= 7 or reserved or size > 1 << 16:  # not DICOM: drop it at once
            raise ValueError("not a DICOM PDU")
        return kind, await reader.readexactly(size)


def _associate_ac(request: bytes) -> tuple[bytes, dict[int, str]]:
    """An A-ASSOCIATE-AC for an A-ASSOCIATE-RQ's body, and the accepted context ids."""
    called, calling = request[4:20], request[20:36]
    offset = 68
    contexts = []
    accepted: dict[int, str] = {}
    while offset + 4 <= len(request):
        kind, _, size = struct.unpack_from(">BBH", request, offset)
        value = request[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if kind != 0x20:
            continue
        context_id = value[0]
        abstract, syntaxes = "", []
        sub = 4
        while sub + 4 <= len(value):
            sub_kind, _, sub_size = struct.unpack_from(">BBH", value, sub)
            text = value[sub + 4 : sub + 4 + sub_size].rstrip(b"\x00").decode("ascii", "replace")
            sub += 4 + sub_size
            if sub_kind == 0x30:
                abstract = text
            elif sub_kind == 0x40:
                syntaxes.append(text)
        syntax = IMPLICIT_LE if IMPLICIT_LE in syntaxes else (syntaxes or [IMPLICIT_LE])[0]
        ok = abstract in ACCEPTED
        if ok:
            accepted[context_id] = abstract
        contexts.append(
            _item(0x21, bytes([context_id, 0, 0 if ok else 3, 0]) + _item(0x40, syntax.encode()))
        )
    user = _item(
        0x50,
        _item(0x51, struct.pack(">I", 16384))
        + _item(0x52, IMPLEMENTATION_UID.encode())
        + _item(0x55, IMPLEMENTATION_VERSION.encode()),
    )
    body = (
        struct.pack(">HH", 1, 0)
        + called
        + calling
        + bytes(32)
        + _item(0x10, APPLICATION_CONTEXT.encode())
        + b"".join(contexts)
        + user
    )
    return struct.pack(">BBI", 2, 0, len(body)) + body, accepted


def _pdata(context_id: int, command: bytes) -> bytes:
    pdv = struct.pack(">IBB", len(command) + 2, context_id, 0x03) + command
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


async def dicom(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    kind, body = await _pdu(reader)
    if kind != 1:
        return
    answer, accepted = _associate_ac(body)
    writer.write(answer)
    command = b""
    waiting: tuple[int, dict[int, bytes]] | None = None  # a C-FIND whose identifier is coming
    while True:
        kind, body = await _pdu(reader)
        if kind == 5:  # A-RELEASE-RQ
            writer.write(struct.pack(">BBI", 6, 0, 4) + bytes(4))
            await writer.drain()
            return
        if kind != 4:  # A-ABORT or nonsense
            return
        offset = 0
        while offset + 6 <= len(body):
            size, context_id, control = struct.unpack_from(">IBB", body, offset)
            fragment = body[offset + 6 : offset + 4 + size]
            offset += 4 + size
            if control & 1:  # command fragment
                command += fragment
                if not control & 2:
                    continue
                fields = _parse_command(command)
                command = b""
                has_data = fields.get(0x0800, b"\x01\x01") != b"\x01\x01"
                if has_data:
                    waiting = (context_id, fields)
                else:
                    _respond(writer, context_id, fields, accepted)
            elif control & 2 and waiting:  # last fragment of the identifier
                _respond(writer, *waiting, accepted)
                waiting = None
        await writer.drain()


def _respond(
    writer: asyncio.StreamWriter, context_id: int, fields: dict[int, bytes], accepted: dict
) -> None:
    command_field = struct.unpack("<H", fields.get(0x0100, b"\x00\x00")[:2])[0]
    message_id = fields.get(0x0110, b"\x01\x00")[:2]
    sop_class = fields.get(0x0002) or _uid(accepted.get(context_id, VERIFICATION))
    if command_field not in (0x0030, 0x0020):  # only C-ECHO and C-FIND are answered
        return
    reply = _command(
        [
            (0x0002, sop_class),
            (0x0100, struct.pack("<H", command_field | 0x8000)),
            (0x0120, message_id),
            (0x0800, b"\x01\x01"),
            (0x0900, b"\x00\x00"),
        ]
    )
    writer.write(_pdata(context_id, reply))


# --- serving --------------------------------------------------------------------------------


def _listener(address: str, port: int, backlog: int = 128) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def raise_open_files(wanted: int = 200_000) -> int:
    """Raise this process's open-file limit as far as allowed; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (wanted, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def handler_for(kind: str, tls: ssl.SSLContext | None) -> tuple[Handler, ssl.SSLContext | None]:
    handlers: dict[str, tuple[Handler, ssl.SSLContext | None]] = {
        "ssh": (ssh, None),
        "ftp-anon": (ftp(True), None),
        "ftp-auth": (ftp(False), None),
        "http-open": (http(True), None),
        "http-basic": (http(False), None),
        "https-basic": (http(False), tls),
        "redis-open": (redis(True), None),
        "redis-auth": (redis(False), None),
        "dicom": (dicom, None),
    }
    handler, context = handlers[kind]
    return _guard(handler), context


async def serve(family: str, hosts: int, network_name: str, seed: int) -> None:
    network = {"loopback": LOOPBACK, "wan": WAN}[network_name]
    raise_open_files()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, _context: None)  # peers that reset are normal here
    tls = _tls_context() if family == "http" else None
    servers = []
    for host in build_fleet(hosts, network, seed):
        for service in host.services:
            if FAMILIES[service.kind] != family:
                continue
            handler, context = handler_for(service.kind, tls)
            sock = _listener(host.address, service.port)
            servers.append(await asyncio.start_server(handler, sock=sock, ssl=context, limit=16384))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"ready {len(servers)}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True, choices=sorted(set(FAMILIES.values())))
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--network", choices=["loopback", "wan"], default="loopback")
    parser.add_argument("--seed", type=int, default=20240)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.family, args.hosts, args.network, args.seed))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
