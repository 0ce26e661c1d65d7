"""A small SMB client for the smb probe: SMB1 negotiation, NTLM null and guest sessions over
SMB2/3, and the share list through the srvsvc pipe (NetShareEnumAll), nothing more.

Written on `ProbeContext.connect` rather than taken from a library: pysmb speaks SMB2 only as
2.0.2 and neither it nor smbprotocol opens a true null session. Every read is bounded in time and
bytes (`Buffered`). No Probe lives here, so importing it registers nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from inventory.audit.probes._wire import (
    Buffered,
    ProtocolError,
)
from inventory.audit.probes.base import (
    ProbeContext,
    printable,
)

MAX_MESSAGE = 128 * 1024  # one SMB message; ours are a few KiB
CONNECTION_CAP = 512 * 1024  # bytes read on one connection, at most
WORKSTATION = "VIGIE"
DIALECTS = {0x0202: "2.0.2", 0x0210: "2.1", 0x0300: "3.0", 0x0302: "3.0.2", 0x0311: "3.1.1"}


# NT status codes the protocol itself relies on; any other non-zero status is a refusal.
STATUS_PENDING = 0x00000103
STATUS_MORE_PROCESSING = 0xC0000016
STATUS_BUFFER_OVERFLOW = 0x80000005

_SMB2_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")
_NEGOTIATE, _SESSION_SETUP, _TREE_CONNECT, _CREATE, _READ, _WRITE = 0, 1, 3, 5, 8, 9
_ASYNC = 0x2
_UNSOLICITED = 0xFFFFFFFFFFFFFFFF  # message id of an oplock break

# NTLM flags: unicode, request target, NTLM, always sign, extended session security, target info,
# 128- and 56-bit; no signing, sealing or key exchange (an anonymous or guest session has no key).
_NTLM_FLAGS = 0x00000001 | 0x00000004 | 0x00000200 | 0x00008000 | 0x00080000 | 0x00800000
_NTLM_FLAGS |= 0x20000000 | 0x80000000
_NTLM_ANONYMOUS = 0x00000800
_EMPTY_PASSWORD_HASH = bytes.fromhex("31d6cfe0d16ae931b73c59d7e0c089c0")  # MD4 of ""
_NTLM_OID = bytes.fromhex("060a2b06010401823702020a")
_SPNEGO_OID = bytes.fromhex("06062b0601050502")

_SRVSVC = uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188").bytes_le + struct.pack("<HH", 3, 0)
_NDR = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le + struct.pack("<I", 2)
_RPC_BIND, _RPC_BIND_ACK, _RPC_REQUEST, _RPC_RESPONSE = 11, 12, 0, 2
_NET_SHARE_ENUM_ALL = 15
STYPE_SPECIAL = 0x80000000
SAMBA_VERSION = re.compile(r"Samba (\d+(?:\.\d+)+)")


class SmbError(ProtocolError):
    """The peer broke the protocol: the exchange did not happen."""


class Refused(Exception):
    """The server answered no (a status code): an answer, not a failure."""


def _unpack(fmt: str | struct.Struct, data: bytes, offset: int = 0) -> tuple[Any, ...]:
    try:
        if isinstance(fmt, struct.Struct):
            return fmt.unpack_from(data, offset)
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise SmbError("an SMB answer was cut short") from None


# --- the connection -------------------------------------------------------------------------


def _netbios_name(name: str, suffix: int) -> bytes:
    raw = name.ljust(15)[:15].encode("ascii") + bytes([suffix])
    return b"\x20" + bytes(b for c in raw for b in (0x41 + (c >> 4), 0x41 + (c & 0x0F))) + b"\x00"


class _Transport:
    """SMB messages on one TCP connection (4-byte NetBIOS framing), every read bounded."""

    def __init__(
        self, ctx: ProbeContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.ctx = ctx
        self.reader = reader
        self.stream = Buffered(ctx, reader, cap=CONNECTION_CAP)
        self.writer = writer

    async def netbios_session(self) -> None:
        """Port 139: the NetBIOS session request, to the generic name every server accepts."""
        names = _netbios_name("*SMBSERVER", 0x20) + _netbios_name(WORKSTATION, 0x00)
        self.writer.write(b"\x81\x00" + struct.pack(">H", len(names)) + names)
        head = await self.stream.exactly(4)
        body = await self.stream.exactly(int.from_bytes(head[1:], "big") & 0x1FFFF)
        if head[0] == 0x83:
            raise SmbError(f"the NetBIOS session was refused (code 0x{body[:1].hex() or '00'})")
        if head[0] != 0x82:
            raise SmbError("not a NetBIOS session answer")

    def send(self, message: bytes) -> None:
        self.writer.write(struct.pack(">I", len(message)) + message)

    async def answered(self) -> bool:
        """False when the peer closed or reset the connection without a byte (Windows does that
        to SMB1 once SMBv1 is removed); a silent peer is an error."""
        try:
            chunk = await asyncio.wait_for(self.reader.read(4), timeout=self.ctx.read_timeout)
        except TimeoutError:
            raise SmbError("no answer") from None
        except (ConnectionError, OSError):
            return False
        self.stream.buffer += chunk
        self.stream.total += len(chunk)
        return bool(chunk)

    async def receive(self) -> bytes:
        while True:
            head = await self.stream.exactly(4)
            size = int.from_bytes(head[1:], "big")
            if head[0] == 0x85 and size == 0:  # NetBIOS keep-alive
                continue
            if head[0] != 0x00:
                raise SmbError(f"not an SMB answer: {printable(head, 20)!r}")
            if size > MAX_MESSAGE:
                raise SmbError(f"an SMB message of {size} bytes")
            return await self.stream.exactly(size)


# --- SMB1: is it still accepted, and what does the server call itself -----------------------


def _smb1(command: int, words: bytes, data: bytes) -> bytes:
    header = b"\xffSMB" + bytes([command]) + b"\0" * 4 + b"\x18" + struct.pack("<H", 0xC001)
    header += b"\0" * 12 + struct.pack("<HHHH", 0, 0xFEFF, 0, 1)
    return header + bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def _smb1_parts(message: bytes) -> tuple[int, int, bytes, bytes, int]:
    """(status, flags2, words, data, offset of data) of an SMB1 answer."""
    if message[:4] != b"\xffSMB" or len(message) < 33:
        raise SmbError("not an SMB1 answer")
    (status,) = _unpack("<I", message, 5)
    (flags2,) = _unpack("<H", message, 10)
    count = message[32]
    words = message[33 : 33 + 2 * count]
    (size,) = _unpack("<H", message, 33 + 2 * count)
    start = 35 + 2 * count
    return status, flags2, words, message[start : start + size], start


def _native_names(message: bytes) -> str:
    """NativeOS and NativeLanMan of a Session Setup answer, as one line ("Windows 6.1; Samba
    4.17.12-Debian"); empty when the server said no."""
    status, flags2, _words, data, start = _smb1_parts(message)
    if status != 0:
        return ""
    if flags2 & 0x8000:  # unicode strings, aligned on an even offset from the header
        text = data[start % 2 :].decode("utf-16-le", errors="replace")
    else:
        text = data.decode("latin-1")
    names = [printable(part.encode("latin-1", errors="replace")) for part in text.split("\0")]
    return "; ".join(n for n in names[:2] if n)


async def smbv1_accepted(
    ctx: ProbeContext, address: str, port: int, netbios: bool
) -> tuple[bool, str]:
    """Whether the server picks "NT LM 0.12", and its own names when it does."""
    async with ctx.connect(address, port) as (reader, writer):
        wire = _Transport(ctx, reader, writer)
        if netbios:
            await wire.netbios_session()
        wire.send(_smb1(0x72, b"", b"\x02NT LM 0.12\x00"))
        if not await wire.answered():
            return False, ""
        answer = await wire.receive()
        if answer[:4] == b"\xfeSMB":  # an SMB2 answer: it does not speak SMB1
            return False, ""
        status, _flags2, words, _data, _start = _smb1_parts(answer)
        if answer[4] != 0x72:
            raise SmbError("an SMB1 answer to another request")
        if status != 0 or len(words) < 34 or _unpack("<H", words)[0] != 0:
            return False, ""  # "no dialect" (0xFFFF): SMBv1 refused
        (session_key,) = _unpack("<I", words, 15)
        setup = struct.pack("<BBHHHHIHHII", 0xFF, 0, 0, 4356, 2, 0, session_key, 0, 0, 0, 0xD4)
        wire.send(_smb1(0x73, setup, b"\0" * 9))  # null session: no account, no password
        try:
            return True, _native_names(await wire.receive())
        except ProtocolError:
            return True, ""  # the version is a bonus; SMBv1 itself was already answered


# --- NTLM in SPNEGO: the null and the guest logins ------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    elif size < 0x100:
        length = b"\x81" + bytes([size])
    else:
        length = b"\x82" + size.to_bytes(2, "big")
    return bytes([tag]) + length + content


def _ntlm_negotiate() -> bytes:
    token = b"NTLMSSP\0" + struct.pack("<II", 1, _NTLM_FLAGS) + b"\0" * 16
    mechs = _der(0xA0, _der(0x30, _NTLM_OID))
    return _der(0x60, _SPNEGO_OID + _der(0xA0, _der(0x30, mechs + _der(0xA2, _der(0x04, token)))))


@dataclass
class _Challenge:
    challenge: bytes
    flags: int
    target_info: bytes


def _ntlm_challenge(blob: bytes) -> _Challenge:
    start = blob.find(b"NTLMSSP\0\x02\0\0\0")
    if start < 0:
        raise SmbError("no NTLM challenge in the session answer")
    token = blob[start:]
    _sig, _kind, _tlen, _tmax, _toff, flags, challenge, _ctx, info_len, _imax, info_off = _unpack(
        "<8sIHHII8s8sHHI", token
    )
    if info_off + info_len > len(token):
        raise SmbError("a broken NTLM challenge")
    return _Challenge(challenge, flags, token[info_off : info_off + info_len])


def _filetime(target_info: bytes) -> bytes:
    """The server's timestamp (MsvAvTimestamp) when it sent one, else ours."""
    offset = 0
    while offset + 4 <= len(target_info):
        av_id, av_len = struct.unpack_from("<HH", target_info, offset)
        if av_id == 0:
            break
        if av_id == 7 and av_len == 8:
            return target_info[offset + 4 : offset + 12]
        offset += 4 + av_len
    return struct.pack("<Q", (int(time.time()) + 11644473600) * 10_000_000)


def _ntlm_authenticate(challenge: _Challenge, user: str) -> bytes:
    """An AUTHENTICATE message: anonymous (no user: empty NT response, one-byte LM response) or
    NTLMv2 for `user` with an empty password."""
    flags = challenge.flags & _NTLM_FLAGS
    if user:
        key = hmac.new(_EMPTY_PASSWORD_HASH, user.upper().encode("utf-16-le"), "md5").digest()
        client = os.urandom(8)
        blob = b"\x01\x01" + b"\0" * 6 + _filetime(challenge.target_info) + client + b"\0" * 4
        blob += challenge.target_info + b"\0" * 4
        proof = hmac.new(key, challenge.challenge + blob, "md5").digest()
        nt, lm = proof + blob, hmac.new(key, challenge.challenge + client, "md5").digest() + client
        workstation = WORKSTATION
    else:
        flags |= _NTLM_ANONYMOUS
        nt, lm, workstation = b"", b"\0", ""
    fields = [lm, nt, b"", user.encode("utf-16-le"), workstation.encode("utf-16-le"), b""]
    offset, header, payload = 64, b"", b""
    for value in fields:
        header += struct.pack("<HHI", len(value), len(value), offset)
        payload += value
        offset += len(value)
    token = b"NTLMSSP\0" + struct.pack("<I", 3) + header + struct.pack("<I", flags) + payload
    return _der(0xA1, _der(0x30, _der(0xA2, _der(0x04, token))))


# --- SMB2/3 ---------------------------------------------------------------------------------


def _negotiate_request() -> bytes:
    dialects = sorted(DIALECTS)
    fixed = 36 + 2 * len(dialects)
    context_offset = 64 + fixed + (-(64 + fixed) % 8)
    body = struct.pack(
        "<HHHHI16sIHH", 36, len(dialects), 1, 0, 0, os.urandom(16), context_offset, 1, 0
    )
    body += b"".join(struct.pack("<H", d) for d in dialects)
    body += b"\0" * (context_offset - 64 - len(body))
    preauth = struct.pack("<HHH", 1, 32, 1) + os.urandom(32)  # SHA-512 and a salt, for 3.1.1
    return body + struct.pack("<HHI", 1, len(preauth), 0) + preauth


@dataclass
class _Reply:
    status: int
    message: bytes
    session_id: int
    tree_id: int

    @property
    def body(self) -> bytes:
        return self.message[64:]


class _Smb2:
    """Just enough SMB2/3 for one null or guest session and one share listing."""

    def __init__(self, wire: _Transport) -> None:
        self.wire = wire
        self.message_id = 0
        self.session_id = 0
        self.tree_id = 0
        self.dialect = 0
        self.max_read = 65536

    def _send(self, command: int, body: bytes) -> int:
        message_id = self.message_id
        self.message_id += 1
        charge = 0 if self.dialect in (0, 0x0202) else 1
        header = _SMB2_HEADER.pack(
            b"\xfeSMB", 64, charge, 0, command, 64, 0, 0, message_id, 0xFEFF, self.tree_id,
            self.session_id, b"\0" * 16,
        )  # fmt: skip
        self.wire.send(header + body)
        return message_id

    async def _reply(self, message_id: int, message: bytes | None = None) -> _Reply:
        for _ in range(16):
            message = message or await self.wire.receive()
            fields = _unpack(_SMB2_HEADER, message)
            if fields[0] != b"\xfeSMB":
                raise SmbError("not an SMB2 answer")
            status, flags, answered = fields[3], fields[6], fields[8]
            if answered == _UNSOLICITED or (status == STATUS_PENDING and flags & _ASYNC):
                message = None  # an oplock break, or an interim answer: the real one follows
                continue
            if answered != message_id:
                raise SmbError("an SMB2 answer to another request")
            return _Reply(status, message, fields[11], fields[10])
        raise SmbError("too many interim SMB2 answers")

    async def call(self, command: int, body: bytes) -> _Reply:
        return await self._reply(self._send(command, body))

    async def negotiate(self) -> bool:
        """False when the server closed the connection or answered in SMB1: it speaks only
        SMB1 (or nothing)."""
        message_id = self._send(_NEGOTIATE, _negotiate_request())
        if not await self.wire.answered():
            return False
        first = await self.wire.receive()
        if first[:4] == b"\xffSMB":
            return False
        reply = await self._reply(message_id, first)
        if reply.status != 0:
            raise Refused(f"negotiate: status 0x{reply.status:08x}")
        _size, _mode, dialect = _unpack("<HHH", reply.body)
        if dialect not in DIALECTS:
            raise SmbError(f"the server chose an unknown SMB dialect 0x{dialect:04x}")
        (max_read,) = _unpack("<I", reply.body, 32)
        self.max_read = max(1024, min(max_read, 65536))
        self.dialect = dialect
        return True

    async def session_setup(self, user: str) -> None:
        """Logs in as `user` ("" = null session) with no password; Refused when not let in."""

        def request(token: bytes) -> bytes:
            return struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 88, len(token), 0) + token

        reply = await self.call(_SESSION_SETUP, request(_ntlm_negotiate()))
        if reply.status != STATUS_MORE_PROCESSING:
            raise Refused(f"session setup: status 0x{reply.status:08x}")
        self.session_id = reply.session_id
        _size, _flags, offset, length = _unpack("<HHHH", reply.body)
        challenge = _ntlm_challenge(reply.message[offset : offset + length])
        reply = await self.call(_SESSION_SETUP, request(_ntlm_authenticate(challenge, user)))
        if reply.status != 0:
            raise Refused(f"session setup: status 0x{reply.status:08x}")

    async def tree_connect(self, path: str) -> None:
        name = path.encode("utf-16-le")
        reply = await self.call(_TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(name)) + name)
        if reply.status != 0:
            raise Refused(f"tree connect to IPC$: status 0x{reply.status:08x}")
        self.tree_id = reply.tree_id

    async def open_pipe(self, name: str) -> bytes:
        encoded = name.encode("utf-16-le")
        body = struct.pack(
            "<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x0012019F, 0, 7, 1, 0, 120, len(encoded), 0, 0
        )
        reply = await self.call(_CREATE, body + encoded)
        if reply.status != 0:
            raise Refused(f"open of the {name} pipe: status 0x{reply.status:08x}")
        if len(reply.body) < 80:
            raise SmbError("a CREATE answer was cut short")
        return reply.body[64:80]

    async def write(self, file_id: bytes, data: bytes) -> None:
        body = struct.pack("<HHIQ16sIIHHI", 49, 112, len(data), 0, file_id, 0, 0, 0, 0, 0)
        reply = await self.call(_WRITE, body + data)
        if reply.status != 0:
            raise Refused(f"write to the pipe: status 0x{reply.status:08x}")

    async def read(self, file_id: bytes) -> bytes:
        body = struct.pack(
            "<HBBIQ16sIIIHHB", 49, 0x50, 0, self.max_read, 0, file_id, 0, 0, 0, 0, 0, 0
        )
        reply = await self.call(_READ, body)
        if reply.status not in (0, STATUS_BUFFER_OVERFLOW):
            raise Refused(f"read from the pipe: status 0x{reply.status:08x}")
        _size, offset, _reserved, length = _unpack("<HBBI", reply.body)
        if offset + length > len(reply.message):
            raise SmbError("a READ answer was cut short")
        return reply.message[offset : offset + length]


# --- DCE/RPC: NetShareEnumAll over srvsvc ---------------------------------------------------


def _rpc(kind: int, call_id: int, body: bytes) -> bytes:
    return (
        struct.pack("<BBBB4sHHI", 5, 0, kind, 0x03, b"\x10\0\0\0", 16 + len(body), 0, call_id)
        + body
    )


def _rpc_bind() -> bytes:
    return _rpc(_RPC_BIND, 1, struct.pack("<HHIB3xHBx", 4280, 4280, 0, 1, 0, 1) + _SRVSVC + _NDR)


def _ndr_string(text: str) -> bytes:
    encoded = (text + "\0").encode("utf-16-le")
    chars = len(encoded) // 2
    data = struct.pack("<III", chars, 0, chars) + encoded
    return data + b"\0" * (-len(data) % 4)


def _share_enum_request(server: str) -> bytes:
    stub = struct.pack("<I", 0x00020000) + _ndr_string(f"\\\\{server}")
    stub += struct.pack("<IIIIIIII", 1, 1, 0x00020004, 0, 0, 0xFFFFFFFF, 0x00020008, 0)
    return _rpc(_RPC_REQUEST, 2, struct.pack("<IHH", len(stub), 0, _NET_SHARE_ENUM_ALL) + stub)


class _Ndr:
    """A reader over an NDR stub that raises SmbError instead of reading past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def u32(self) -> int:
        self.offset += -self.offset % 4
        (value,) = _unpack("<I", self.data, self.offset)
        self.offset += 4
        return int(value)

    def string(self) -> str:
        _maximum, _first, count = self.u32(), self.u32(), self.u32()
        end = self.offset + 2 * count
        if end > len(self.data):
            raise SmbError("a share name runs past the answer")
        text = self.data[self.offset : end].decode("utf-16-le", errors="replace")
        self.offset = end
        return text.rstrip("\0")


@dataclass
class _Share:
    name: str
    kind: int
    remark: str


def _parse_share_enum(stub: bytes) -> list[_Share]:
    if len(stub) < 4:
        raise SmbError("an empty share list answer")
    (error,) = struct.unpack_from("<I", stub, len(stub) - 4)
    if error != 0:
        raise Refused(f"share listing: error {error}")
    ndr = _Ndr(stub)
    _level, _switch, container = ndr.u32(), ndr.u32(), ndr.u32()
    if not container:
        return []
    count, array = ndr.u32(), ndr.u32()
    if not array:
        return []
    if ndr.u32() != count or 12 * count > len(stub):
        raise SmbError(f"a share list of {count} entries that does not fit its answer")
    entries = [(ndr.u32(), ndr.u32(), ndr.u32()) for _ in range(count)]
    return [
        _Share(ndr.string() if name else "", kind, ndr.string() if remark else "")
        for name, kind, remark in entries
    ]


async def _rpc_exchange(smb: _Smb2, pipe: bytes, pdu: bytes) -> tuple[int, bytes]:
    """Sends one RPC and gathers its answer's fragments: (packet type, joined body)."""
    await smb.write(pipe, pdu)
    data, kind, body = b"", -1, b""
    while True:
        while len(data) < 16 or len(data) < _unpack("<H", data, 8)[0]:
            data += await smb.read(pipe)
        _ver, _minor, kind, flags, _rep, size, _auth, _call = _unpack("<BBBB4sHHI", data)
        if size < 16:
            raise SmbError("a broken RPC answer")
        body += data[16 : 16 + size] if kind != _RPC_RESPONSE else data[24:size]
        data = data[size:]
        if flags & 0x02 or kind != _RPC_RESPONSE:  # the last fragment
            return kind, body


@dataclass
class Listing:
    dialect: str = ""
    shares: list[_Share] | None = None  # None: the server did not list them
    refusal: str = ""
    smb2: bool = True


async def list_shares(
    ctx: ProbeContext, address: str, port: int, netbios: bool, user: str
) -> Listing:
    listing = Listing()
    async with ctx.connect(address, port) as (reader, writer):
        wire = _Transport(ctx, reader, writer)
        if netbios:
            await wire.netbios_session()
        smb = _Smb2(wire)
        try:
            if not await smb.negotiate():
                listing.smb2 = False
                return listing
            listing.dialect = DIALECTS[smb.dialect]
            await smb.session_setup(user)
            await smb.tree_connect(f"\\\\{address}\\IPC$")
            pipe = await smb.open_pipe("srvsvc")
            kind, _body = await _rpc_exchange(smb, pipe, _rpc_bind())
            if kind != _RPC_BIND_ACK:
                raise Refused("the srvsvc interface was refused")
            kind, stub = await _rpc_exchange(smb, pipe, _share_enum_request(address))
            if kind != _RPC_RESPONSE:
                raise Refused("share listing: the server answered with a fault")
            listing.shares = _parse_share_enum(stub)
        except Refused as exc:
            listing.refusal = str(exc)
    return listing
