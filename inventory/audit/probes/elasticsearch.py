"""Elasticsearch (or OpenSearch) answering without credentials (`database.no-authentication`).

Runs on every open port the port stage named "elasticsearch" (9200, or declared). Read-only:
HTTP GET `/` (product and version) and `/_cat/indices?format=json` (index names and document
counts), each answer capped in bytes. Index names are kept (a few), never a document.
"""

from __future__ import annotations

import json
import re
from typing import Any

from inventory.audit.probes._wire import (
    MAX_NAMES,
    Buffered,
    ProtocolError,
    ports_for,
    run_on_ports,
)
from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeResult,
    ServiceObservation,
    Target,
    printable,
)
from inventory.i18n import N_

NO_AUTHENTICATION = "database.no-authentication"
MAX_BODY = 256 * 1024
MAX_HEADERS = 16 * 1024
INDICES_PATH = "/_cat/indices?format=json&h=index,docs.count&s=index"
_INDEX = re.compile(rb'"index"\s*:\s*"((?:[^"\\]|\\.){0,255})"')
_DOCS = re.compile(rb'"docs\.count"\s*:\s*"?(\d+)')
_CHUNK_SIZE = re.compile(rb"^[0-9a-fA-F]{1,8}")


async def _get(ctx: ProbeContext, address: str, port: int, path: str) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 GET on its own connection: (status, body up to MAX_BODY, truncated)."""
    async with ctx.connect(address, port) as (reader, writer):
        host = f"[{address}]" if ":" in address else address
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
            "User-Agent: Vigie audit\r\nConnection: close\r\n\r\n".encode()
        )
        stream = Buffered(ctx, reader, cap=MAX_HEADERS + MAX_BODY + 4096)
        status_line = await stream.line()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP answer: {printable(status_line, 60)!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        size = 0
        while True:
            line = await stream.line()
            size += len(line)
            if size > MAX_HEADERS:
                raise ProtocolError("HTTP headers too long")
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = b""
            while len(body) < MAX_BODY:
                match = _CHUNK_SIZE.match(await stream.line())
                if match is None:
                    raise ProtocolError("bad chunked encoding")
                chunk = int(match.group(), 16)
                if chunk == 0:
                    return status, body, False
                body += await stream.exactly(min(chunk, MAX_BODY - len(body) + 1))
                if len(body) > MAX_BODY:
                    break
                await stream.line()
            return status, body[:MAX_BODY], True
        length = headers.get(b"content-length", b"")
        if length.isdigit():
            wanted = int(length)
            body = await stream.exactly(min(wanted, MAX_BODY))
            return status, body, wanted > MAX_BODY
        body, truncated = await stream.rest()
        return status, body[:MAX_BODY], truncated or len(body) > MAX_BODY


class Elasticsearch(Probe):
    name = "elasticsearch"
    default_ports = (9200,)

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        budget = 2 * ctx.connect_timeout + 12 * ctx.read_timeout

        async def on_port(
            address: str, port: int
        ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
            return await self._check_port(address, port, ctx)

        names = {"elasticsearch", "opensearch", "es"}
        return await run_on_ports(
            self.name, "Elasticsearch", {NO_AUTHENTICATION}, ports_for(ctx, names), on_port, budget
        )

    async def _check_port(
        self, address: str, port: int, ctx: ProbeContext
    ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
        status, body, _ = await _get(ctx, address, port, "/")
        if status in (401, 403):
            service = ServiceObservation(address, port, PortState.open, service="elasticsearch")
            return [service], []
        if status != 200:
            raise ProtocolError(f"GET / answered HTTP {status}")
        try:
            root: Any = json.loads(body)
        except ValueError as exc:
            raise ProtocolError("GET / did not answer JSON: not Elasticsearch") from exc
        version_info = root.get("version") if isinstance(root, dict) else None
        if not isinstance(version_info, dict) or "number" not in version_info:
            raise ProtocolError("GET / answered JSON without a version: not Elasticsearch")
        version = str(version_info.get("number", ""))[:40]
        product = (
            "OpenSearch" if version_info.get("distribution") == "opensearch" else "Elasticsearch"
        )
        service = ServiceObservation(
            address,
            port,
            PortState.open,
            service="elasticsearch",
            product=product,
            version=version,
        )
        status, body, truncated = await _get(ctx, address, port, INDICES_PATH)
        if status in (401, 403):
            return [service], []
        if status != 200:
            raise ProtocolError(f"GET /_cat/indices answered HTTP {status}")
        names = [printable(m, 100) for m in _INDEX.findall(body)]
        documents = sum(int(m) for m in _DOCS.findall(body))
        evidence: dict[str, object] = {
            "product": product,
            "version": version,
            "index_count": len(names),
            "indices": names[:MAX_NAMES],
            "document_count": documents,
        }
        if truncated:
            evidence["counts_capped"] = True
        finding = FindingCandidate(
            check=NO_AUTHENTICATION,
            severity="critical",
            address=address,
            port=port,
            title=f"The {product} database on port {port} answers anyone, without a password",
            remediation=N_(
                "Turn on security (xpack.security.enabled with users and TLS, or the OpenSearch "
                "security plugin), bind the service to the addresses of the applications that use "
                "it, and close the port at the firewall for everybody else."
            ),
            evidence=evidence,
        )
        return [service], [finding]
