"""MongoDB answering without credentials (`database.no-authentication`).

Runs on every open port the port stage named "mongodb" (27017, or declared). Read-only: OP_MSG
`hello`, `buildInfo` (version) and `listDatabases` with nameOnly, in a tiny hand-written BSON
(the few types these answers use). Database names are kept (a few), never a document.
"""

from __future__ import annotations

import itertools
import struct
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
)
from inventory.i18n import N_

NO_AUTHENTICATION = "database.no-authentication"
OP_MSG = 2013
MAX_MESSAGE = 1024 * 1024
UNAUTHORIZED = 13
_request_ids = itertools.count(1)


def bson_encode(document: dict[str, Any]) -> bytes:
    """BSON for the small documents Vigie sends (and its test fixtures answer)."""
    body = b""
    for key, value in document.items():
        name = key.encode() + b"\x00"
        if isinstance(value, bool):
            body += b"\x08" + name + (b"\x01" if value else b"\x00")
        elif isinstance(value, int) and -(2**31) <= value < 2**31:
            body += b"\x10" + name + struct.pack("<i", value)
        elif isinstance(value, int):
            body += b"\x12" + name + struct.pack("<q", value)
        elif isinstance(value, float):
            body += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\x00"
            body += b"\x02" + name + struct.pack("<i", len(raw)) + raw
        elif isinstance(value, dict):
            body += b"\x03" + name + bson_encode(value)
        elif isinstance(value, list | tuple):
            body += b"\x04" + name + bson_encode({str(i): v for i, v in enumerate(value)})
        elif value is None:
            body += b"\x0a" + name
        else:
            raise TypeError(f"cannot encode {type(value).__name__} in BSON")
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


_FIXED = {
    0x01: 8,
    0x07: 12,
    0x09: 8,
    0x11: 8,
    0x12: 8,
    0x13: 16,
    0x0A: 0,
    0x06: 0,
    0xFF: 0,
    0x7F: 0,
}


def bson_decode(data: bytes, offset: int = 0, depth: int = 0) -> dict[str, Any]:
    """Decodes one BSON document; raises ValueError on anything malformed or unexpected.
    Types Vigie has no use for (ObjectId, dates, binary...) are skipped as None."""
    if depth > 16:
        raise ValueError("BSON nested too deep")
    (size,) = struct.unpack_from("<i", data, offset)
    end = offset + size
    if size < 5 or end > len(data) or data[end - 1] != 0:
        raise ValueError("malformed BSON document")
    result: dict[str, Any] = {}
    pos = offset + 4
    while pos < end - 1:
        kind = data[pos]
        name_end = data.index(b"\x00", pos + 1, end)
        key = data[pos + 1 : name_end].decode("utf-8", "replace")
        pos = name_end + 1
        if kind == 0x01:
            result[key] = struct.unpack_from("<d", data, pos)[0]
        elif kind == 0x02:
            (length,) = struct.unpack_from("<i", data, pos)
            if length < 1 or pos + 4 + length > end:
                raise ValueError("malformed BSON string")
            result[key] = data[pos + 4 : pos + 3 + length].decode("utf-8", "replace")
            pos += 4 + length
            continue
        elif kind in (0x03, 0x04):
            (length,) = struct.unpack_from("<i", data, pos)
            inner = bson_decode(data, pos, depth + 1)
            result[key] = list(inner.values()) if kind == 0x04 else inner
            pos += length
            continue
        elif kind == 0x05:
            (length,) = struct.unpack_from("<i", data, pos)
            if length < 0:
                raise ValueError("malformed BSON binary")
            result[key] = None
            pos += 5 + length
            continue
        elif kind == 0x08:
            result[key] = data[pos] != 0
            pos += 1
            continue
        elif kind == 0x10:
            result[key] = struct.unpack_from("<i", data, pos)[0]
        elif kind == 0x12:
            result[key] = struct.unpack_from("<q", data, pos)[0]
        elif kind in _FIXED:
            result[key] = None
        else:
            raise ValueError(f"unexpected BSON type {kind:#x}")
        pos += _FIXED.get(kind, 4)
    if pos != end - 1:
        raise ValueError("malformed BSON document")
    return result


def op_msg(document: dict[str, Any], request_id: int, response_to: int = 0) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson_encode(document)
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, OP_MSG) + body


def parse_op_msg(message: bytes) -> tuple[int, int, dict[str, Any]]:
    """(request id, response to, body document) of a whole OP_MSG, header included."""
    if len(message) < 21:
        raise ValueError("OP_MSG too short")
    _, request_id, response_to, opcode = struct.unpack_from("<iiii", message)
    if opcode != OP_MSG:
        raise ValueError(f"not an OP_MSG but opcode {opcode}")
    if message[20] != 0:
        raise ValueError("OP_MSG without a body section first")
    return request_id, response_to, bson_decode(message, 21)


async def read_message(stream: Buffered) -> bytes:
    header = await stream.exactly(4)
    (length,) = struct.unpack("<i", header)
    if not 21 <= length <= MAX_MESSAGE:
        raise ProtocolError(f"not a MongoDB message (length {length})")
    return header + await stream.exactly(length - 4)


class MongoDb(Probe):
    name = "mongodb"
    default_ports = (27017,)

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        budget = ctx.connect_timeout + 8 * ctx.read_timeout

        async def on_port(
            address: str, port: int
        ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
            return await self._check_port(address, port, ctx)

        names = {"mongodb", "mongo"}
        return await run_on_ports(
            self.name, "MongoDB", {NO_AUTHENTICATION}, ports_for(ctx, names), on_port, budget
        )

    async def _command(
        self, stream: Buffered, writer: Any, command: dict[str, Any]
    ) -> dict[str, Any]:
        request_id = next(_request_ids) & 0x7FFFFFFF
        writer.write(op_msg({**command, "$db": "admin"}, request_id))
        try:
            _, response_to, reply = parse_op_msg(await read_message(stream))
        except (ValueError, struct.error) as exc:
            raise ProtocolError(f"not a MongoDB answer: {exc}") from exc
        if response_to != request_id:
            raise ProtocolError("the MongoDB answer does not match the request")
        return reply

    async def _check_port(
        self, address: str, port: int, ctx: ProbeContext
    ) -> tuple[list[ServiceObservation], list[FindingCandidate]]:
        async with ctx.connect(address, port) as (reader, writer):
            stream = Buffered(ctx, reader, cap=4 * MAX_MESSAGE)
            hello = await self._command(stream, writer, {"hello": 1})
            if "maxWireVersion" not in hello and hello.get("ok") != 1:
                raise ProtocolError("the answer to hello is not MongoDB's")
            build = await self._command(stream, writer, {"buildInfo": 1})
            version = str(build.get("version", ""))[:40] if build.get("ok") == 1 else ""
            listing = await self._command(stream, writer, {"listDatabases": 1, "nameOnly": True})
        service = ServiceObservation(
            address, port, PortState.open, service="mongodb", product="MongoDB", version=version
        )
        if listing.get("ok") != 1:
            message = str(listing.get("errmsg", ""))
            if listing.get("code") == UNAUTHORIZED or "authentication" in message.lower():
                return [service], []
            raise ProtocolError(f"listDatabases failed: {message[:100]}")
        databases = listing.get("databases")
        if not isinstance(databases, list):
            raise ProtocolError("listDatabases answered without a database list")
        names = sorted(str(d.get("name", ""))[:100] for d in databases if isinstance(d, dict))
        finding = FindingCandidate(
            check=NO_AUTHENTICATION,
            severity="critical",
            address=address,
            port=port,
            title=f"The MongoDB database on port {port} answers anyone, without a password",
            remediation=N_(
                "Turn on access control (security.authorization: enabled) with a user per "
                "application, bind MongoDB to the addresses that need it (net.bindIp), and close "
                "the port at the firewall for everybody else."
            ),
            evidence={
                "product": "MongoDB",
                "version": version,
                "database_count": len(names),
                "databases": names[:MAX_NAMES],
            },
        )
        return [service], [finding]
