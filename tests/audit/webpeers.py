"""Web and TLS peers for the http/tls probe tests: a tiny asyncio HTTP server (optionally over
TLS) and certificates made with `cryptography` at test time (test CA, self-signed, expired).
Everything binds 127.0.0.0/8 only."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import itertools
import json
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Route = tuple[int, dict[str, str], bytes]
Router = Callable[[str, dict[str, str]], Route]

_hosts = itertools.count(1)


def host(block: int) -> str:
    """A fresh 127.42.<block>.x address (block 1xx per test file)."""
    return f"127.42.{block}.{next(_hosts) % 250 + 1}"


# --- certificates -------------------------------------------------------------------------------


@dataclass
class Cert:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def make_cert(
    common_name: str,
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    issuer: Cert | None = None,
    issuer_name: str | None = None,
    days: tuple[int, int] = (-1, 365),
    ca: bool = False,
) -> Cert:
    """A certificate signed by `issuer` (None: by its own key). `issuer_name` forces the issuer
    field (to make a certificate that *claims* to be self-issued but is signed by another key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer = issuer.key if issuer else key
    if issuer_name is not None:
        issuer_dn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)])
    else:
        issuer_dn = issuer.cert.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_dn)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Cert(builder.sign(signer, hashes.SHA256()), key)


def server_context(
    cert: Cert, directory: Path, *, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert_path, key_path = cert.write(directory, f"srv{id(cert)}")
    context.load_cert_chain(cert_path, key_path)
    if max_version is not None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # deprecated indeed: that is what the test is about
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = max_version
    return context


# --- HTTP ---------------------------------------------------------------------------------------


def json_route(doc: Any, ctype: str = "application/json") -> Route:
    return 200, {"Content-Type": ctype}, json.dumps(doc).encode()


def html_route(title: str) -> Route:
    page = f"<html><head><title>{title}</title></head><body>ok</body></html>"
    return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()


NOT_FOUND: Route = (404, {"Content-Type": "text/plain"}, b"not found")


def static(routes: dict[str, Route], server_header: str = "") -> Router:
    def route(path: str, headers: dict[str, str]) -> Route:
        status, extra, body = routes.get(path, NOT_FOUND)
        if server_header:
            extra = {"Server": server_header, **extra}
        return status, extra, body

    return route


def basic_auth(inner: Router, user: str = "doctor", password: str = "s3cret") -> Router:
    token = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def route(path: str, headers: dict[str, str]) -> Route:
        if headers.get("authorization") != token:
            return 401, {"WWW-Authenticate": 'Basic realm="viewer"'}, b"login required"
        return inner(path, headers)

    return route


def http_handler(router: Router) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1] if len(parts) > 1 else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status, extra, body = router(path, headers)
        response = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        response += [f"{k}: {v}" for k, v in extra.items()]
        try:
            writer.write(("\r\n".join(response) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            pass

    return handle


async def serve_http(
    router: Router, address: str, *, tls: ssl.SSLContext | None = None, port: int = 0
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(http_handler(router), address, port, ssl=tls)
    return server, server.sockets[0].getsockname()[1]


def big_json_route(megabytes: int = 10) -> Router:
    """A /patients answer of `megabytes` MB streamed as fast as it is read."""

    def route(path: str, headers: dict[str, str]) -> Route:
        if path == "/patients":
            return json_route(["x" * 1000] * (megabytes * 1000))
        return NOT_FOUND

    return route
