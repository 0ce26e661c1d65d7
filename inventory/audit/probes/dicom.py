"""DICOM services that let anyone in: `dicom.open-association`, `dicom.query-without-authorization`.

On every open port that the port stage saw as DICOM (declared by the asset, identified, or one of
the ports nmap's dicom-ping looks at), the probe asks for an association from a random calling AE
title nobody configured, first to the asset's declared AE titles, then to the generic `ANY-SCP`.
It proposes Verification, Patient Root and Study Root FIND, and the GET/MOVE contexts: retrieval is
only *offered*, an accepted GET/MOVE context is evidence; no C-GET, C-MOVE or C-STORE is ever sent.
When accepted, it sends one C-ECHO and, if a FIND context was accepted, one narrow C-FIND.

Privacy (PRODUCT.md): the C-FIND keeps the number of matches and the names (keywords) of the
attributes that came back, never a value. The response identifiers are never converted, printed
or logged: only their tags are read. pynetdicom's own identifier logging is turned off and its
logger is held at WARNING, so no debug configuration can make it print a dataset.

The query is narrow on purpose: Study Root, STUDY level, StudyDate within the last
FIND_WINDOW_DAYS days, asking for StudyInstanceUID only (no name, no identifier requested). A PACS
answers that from its date index without walking the whole archive (gentle on old devices), a PACS
in use has studies in that window, and at most FIND_CAP matches are counted before a C-CANCEL.
An archive with no study in the window gives 0 matches: the association finding still holds.
Only when Study Root FIND is refused and Patient Root FIND accepted does it ask PATIENT level,
with the same cap.

pynetdicom is blocking: each port's attempts run in a worker thread, with every pynetdicom
timeout set from the context, while the per-host connection slot is held. Its association
socket is replaced by `_WatchedSocket`: pynetdicom asks select() whether data came, and select()
cannot watch a descriptor numbered 1024 or more; pynetdicom takes that error for the peer closing,
so in a process holding many connections (an audit of hundreds of hosts) an association whose
socket got such a number was dropped by Vigie itself right after its request. The replacement asks
poll(), and notes what the peer did (answered, aborted, closed, reset, said something else) so a
failed attempt says which.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import select
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import T_CONNECT, AssociationSocket

from inventory.audit.probes.base import (
    FindingCandidate,
    PortState,
    Probe,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    ServiceObservation,
    Target,
    printable,
)
from inventory.i18n import N_
from inventory.validators import AE_TITLE_GUESSING

OPEN_ASSOCIATION = "dicom.open-association"
QUERY_WITHOUT_AUTHORIZATION = "dicom.query-without-authorization"
CHECKS = frozenset({OPEN_ASSOCIATION, QUERY_WITHOUT_AUTHORIZATION})

DICOM_PORTS = (104, 2761, 2762, 4242, 11112)  # nmap's dicom-ping
GENERIC_CALLED_AE = "ANY-SCP"
# Called AE titles that products ship with or that sites commonly keep; tried only when the user
# turned on the optional "ae-title-guessing" check for the asset, after the declared ones and
# ANY-SCP were refused, and at most this many, one association each (never a brute force).
GUESSED_CALLED_AES = (
    "ORTHANC",
    "DCM4CHEE",
    "DCMQRSCP",
    "STORESCP",
    "PACS",
    "ANY",
    "CONQUESTSRV1",
    "OSIRIX",
    "HOROS",
    "SERVER",
)
FIND_CAP = 50  # matches counted at most, then C-CANCEL
FIND_WINDOW_DAYS = 30

FIND_MODELS = (
    StudyRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelFind,
)
RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
PENDING = (0xFF00, 0xFF01)

REMEDIATION = N_(
    "Restrict the DICOM service to the AE titles and addresses of the systems that need it "
    "(modalities, viewers, the hospitals you work with) and refuse every other calling AE title. "
    "Close the DICOM port at the firewall for everyone else, and let remote partners in only "
    "through the VPN."
)
QUERY_REMEDIATION = N_(
    "Restrict the DICOM service to the AE titles and addresses of the systems that need it "
    "(modalities, viewers, the hospitals you work with) and refuse every other calling AE title. "
    "Close the DICOM port at the firewall for everyone else, and let remote partners in only "
    "through the VPN. Check the access logs: patient data may already have been read."
)

# No dataset value may reach a log: pynetdicom prints identifiers at INFO/DEBUG unless told not to.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
_config.LOG_HANDLER_LEVEL = "none"
logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def calling_ae_title() -> str:
    """A calling AE title no peer has configured: VIGIE + 8 random hex digits (13 of 16 chars)."""
    return "VIGIE" + secrets.token_hex(4).upper()


@dataclass
class Attempt:
    """One association request, as seen from our side; holds no dataset value."""

    called_ae: str
    state: str  # accepted | rejected | failed
    reason: str = ""
    accepted_contexts: list[str] = field(default_factory=list)
    echo_ok: bool = False
    query: str = ""
    matches: int = 0
    matches_capped: bool = False
    attributes: list[str] = field(default_factory=list)
    implementation_class_uid: str = ""
    implementation_version_name: str = ""


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float


def _context_name(uid: str | None) -> str:
    return UID(uid or "").name or str(uid or "")


def _keywords(identifier: Dataset) -> set[str]:
    """The attributes present, by keyword: reads tags only, never converts or touches a value."""
    names = set()
    for tag in identifier.keys():
        names.add(keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})")
    return names


def _query(model: str, today: date) -> tuple[Dataset, str]:
    ds = Dataset()
    if model == StudyRootQueryRetrieveInformationModelFind:
        start = today - timedelta(days=FIND_WINDOW_DAYS)
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyDate = f"{start:%Y%m%d}-{today:%Y%m%d}"
        ds.StudyInstanceUID = ""
        return ds, f"Study Root, STUDY level, StudyDate in the last {FIND_WINDOW_DAYS} days"
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = ""
    return ds, "Patient Root, PATIENT level"


def _find(assoc: Any, attempt: Attempt, timeouts: Timeouts) -> None:
    """One C-FIND, counting matches up to FIND_CAP; keeps attribute keywords, never values."""
    contexts = {c.abstract_syntax: c.context_id for c in assoc.accepted_contexts}
    model = next((m for m in FIND_MODELS if m in contexts), None)
    if model is None:
        return
    identifier, attempt.query = _query(model, date.today())
    keywords: set[str] = set()
    budget = time.monotonic() + 2 * timeouts.read  # a peer dripping matches costs bounded time
    cancelled = False
    extra = 0
    for status, response in assoc.send_c_find(identifier, model, msg_id=1):
        if not status or "Status" not in status:  # timeout, abort or a broken response
            break
        if status.Status not in PENDING:
            break  # the final response
        if cancelled:  # responses already under way when we cancelled are not counted
            extra += 1
            if extra > FIND_CAP or time.monotonic() > budget + timeouts.read:
                assoc.abort()
                break
            continue
        attempt.matches += 1
        if response is not None:
            keywords |= _keywords(response)
        del response  # nothing of the record is kept past this line
        if attempt.matches >= FIND_CAP or time.monotonic() > budget:
            attempt.matches_capped = attempt.matches >= FIND_CAP
            assoc.send_c_cancel(1, contexts[model])
            cancelled = True
    attempt.attributes = sorted(keywords)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """DICOM over TLS (port 2762): the probe asks whether the service lets anyone in, not whether
    its certificate is good (the TLS probe judges that), so the certificate is not verified.
    One for the process, shared (loading the system's CA bundle costs tens of milliseconds)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


PDU_TYPES = range(0x01, 0x08)  # A-ASSOCIATE-RQ .. A-ABORT
A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ABORT = 0x02, 0x03, 0x07


@dataclass
class Wire:
    """What one association's connection did, as seen from our side; never a received value
    beyond the first byte (the PDU type)."""

    connected: bool = False
    tls: bool = False
    first_byte: int | None = None  # of the first answer
    ended: str = ""  # refused | closed | reset | timeout | an error's text
    local_error: str = ""  # Vigie's side could not watch the socket

    def end(self, how: str) -> None:
        self.ended = self.ended or how


def _how_it_ended(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    return getattr(exc, "strerror", None) or exc.__class__.__name__


class _NotingSocket(socket.socket):
    """A TCP socket noting why its connect() failed (pynetdicom keeps only a log line)."""

    wire: Wire

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except OSError as exc:
            self.wire.end(_how_it_ended(exc))
            raise


class _WatchedSocket(AssociationSocket):
    """pynetdicom's association socket, watched with poll() instead of select() (which refuses
    descriptors numbered 1024 or more, pynetdicom reading that as the connection closing), and
    noting in `wire` how the peer answered or ended the connection."""

    def __init__(self, assoc: Association, address: Any, wire: Wire) -> None:
        self.wire = wire
        super().__init__(assoc, address=address)

    def _create_socket(self, address: Any) -> socket.socket:
        plain = super()._create_socket(address)  # bound, options and timeout set
        timeout = plain.gettimeout()
        sock = _NotingSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.settimeout(timeout)
        sock.wire = self.wire
        return sock

    def connect(self, primitive: T_CONNECT) -> None:
        self.wire.tls = self.tls_args is not None
        super().connect(primitive)
        self.wire.connected = self.socket is not None  # pynetdicom drops it when connect fails

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or not self._is_connected:
            return False
        if not hasattr(select, "poll"):  # not on Linux or BSD: pynetdicom's select()
            return super().ready
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            ready = bool(poller.poll(0))  # also POLLHUP/POLLERR: recv() then says what it was
        except (OSError, ValueError) as exc:
            self.wire.local_error = self.wire.local_error or f"{exc.__class__.__name__}: {exc}"
            self.event_queue.put("Evt17")  # as pynetdicom: the transport is gone
            return False
        if isinstance(sock, ssl.SSLSocket):
            return ready or bool(sock.pending())
        return ready

    def recv(self, nr_bytes: int) -> bytearray:
        try:
            data = super().recv(nr_bytes)
        except OSError as exc:  # TimeoutError included
            self.wire.end(_how_it_ended(exc))
            raise
        if data and self.wire.first_byte is None:
            self.wire.first_byte = data[0]
        if len(data) < nr_bytes:
            self.wire.end("closed")
        return data

    def send(self, bytestream: bytes) -> None:
        """As pynetdicom's send (any failure is the transport closing), noting the failure."""
        try:
            cast(socket.socket, self.socket).sendall(bytestream)
        except Exception as exc:  # noqa: BLE001 - pynetdicom's contract: Evt17, not a raise
            self.wire.end(_how_it_ended(exc))
            self.event_queue.put("Evt17")
            return
        evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": bytestream})


class _Requestor(AE):
    """Our side of the association, on a `_WatchedSocket`; `wire` tells how the last one went.
    (`address` is pynetdicom's: a (host, port) tuple before version 3, AddressInformation since.)"""

    def __init__(self, ae_title: str) -> None:
        super().__init__(ae_title=ae_title)
        self.wire = Wire()

    def _create_socket(self, assoc: Association, address: Any, tls_args: Any) -> AssociationSocket:
        self.wire = Wire()
        sock = _WatchedSocket(assoc, address, self.wire)
        sock.tls_args = tls_args
        return sock


def _failure_reason(wire: Wire, assoc: Association, waited: float, timeouts: Timeouts) -> str:
    """Why an association request got neither an acceptance nor a rejection, from what was
    seen on the wire (no peer value is quoted)."""
    if wire.local_error:
        return f"Vigie could not watch its connection ({wire.local_error})"
    first = wire.first_byte
    if first is None:
        layer = "TLS" if wire.tls else "TCP"
        if wire.ended == "refused":
            return "the connection was refused"
        if wire.ended == "closed":
            return "the peer closed the connection without answering the association request"
        if wire.ended == "reset":
            return "the peer reset the connection without answering the association request"
        if not wire.connected and (wire.ended == "timeout" or waited >= timeouts.connect):
            return f"no {layer} connection within {timeouts.connect:g}s"
        if wire.ended == "timeout" or (wire.connected and waited >= timeouts.read):
            return f"no answer to the association request within {timeouts.read:g}s"
        if wire.ended:
            return f"the {layer} connection failed ({wire.ended})"
        if not wire.connected:
            return f"the {layer} connection failed"
        return "the association was dropped on Vigie's side before any answer"
    if first == A_ABORT:
        return "the peer aborted the association request (A-ABORT)"
    answer = assoc.acceptor.primitive
    if first == A_ASSOCIATE_AC and answer is not None and answer.result == 0:
        return (
            "the peer accepted the association but none of the services proposed "
            "(Verification, query, retrieval)"
        )
    if first not in PDU_TYPES:
        return "the peer answered with something that is not DICOM"
    if first in (A_ASSOCIATE_AC, A_ASSOCIATE_RJ):
        return "the peer's association answer could not be read"
    return "the peer answered the association request out of turn"


def _associate(
    address: str, port: int, calling: str, called: str, timeouts: Timeouts, tls: bool = False
) -> Attempt:
    ae = _Requestor(ae_title=calling)
    ae.connection_timeout = timeouts.connect
    ae.acse_timeout = timeouts.read
    ae.dimse_timeout = timeouts.read
    ae.network_timeout = timeouts.read
    for uid in (Verification, *FIND_MODELS, *RETRIEVE_MODELS):
        ae.add_requested_context(uid)
    started = time.monotonic()
    tls_args = (_tls_context(), address) if tls else None
    assoc = ae.associate(address, port, ae_title=called, tls_args=tls_args)
    try:
        if assoc.is_rejected:
            return Attempt(called, "rejected")
        if not assoc.is_established:
            why = _failure_reason(ae.wire, assoc, time.monotonic() - started, timeouts)
            return Attempt(called, "failed", reason=why)
        acceptor = assoc.acceptor
        attempt = Attempt(
            called,
            "accepted",
            accepted_contexts=sorted(
                {_context_name(c.abstract_syntax) for c in assoc.accepted_contexts}
            ),
            implementation_class_uid=printable(
                str(acceptor.implementation_class_uid or "").encode(), 64
            ),
            implementation_version_name=printable(
                str(acceptor.implementation_version_name or "").encode(), 16
            ),
        )
        if any(c.abstract_syntax == Verification for c in assoc.accepted_contexts):
            status = assoc.send_c_echo()
            attempt.echo_ok = bool(status) and status.get("Status") == 0x0000
        if assoc.is_established:
            _find(assoc, attempt, timeouts)
        return attempt
    finally:
        if assoc.is_established:
            assoc.release()
        if assoc.is_alive():
            assoc.abort()
        ae.shutdown()


def _port_attempts(
    address: str,
    port: int,
    called_titles: list[str],
    timeouts: Timeouts,
    tls: bool = False,
) -> list[Attempt]:
    """Declared called AE titles, then the generic one (then the guesses, when asked); stops at
    the first acceptance, and at the first non-DICOM answer (a peer that does not speak DICOM is
    not asked again). On a DICOM-TLS port, TLS first, then plain DICOM if TLS got no answer."""
    calling = calling_ae_title()
    attempts: list[Attempt] = []
    for called in called_titles:
        attempt = _associate(address, port, calling, called, timeouts, tls)
        if tls and attempt.state == "failed" and not attempts:
            tls = False  # not TLS after all: a plain DICOM service on a TLS port number
            attempt = _associate(address, port, calling, called, timeouts, tls)
        attempts.append(attempt)
        if attempt.state != "rejected":
            break
    return attempts


def identify_product(class_uid: str, version_name: str) -> tuple[str, str]:
    """Product and version from the A-ASSOCIATE-AC's implementation identification."""
    name = version_name.strip()
    upper = name.upper()

    def digits_after(prefix: str) -> str:
        rest = name[len(prefix) :].strip("_- ")
        if rest.isdigit() and len(rest) >= 3:
            return ".".join(rest)
        return rest

    if upper.startswith("PYNETDICOM") or class_uid.startswith("1.2.826.0.1.3680043.9.3811."):
        return "pynetdicom", digits_after("PYNETDICOM") if upper.startswith("PYNETDICOM") else ""
    if "ORTHANC" in upper:
        return "Orthanc", name[upper.index("ORTHANC") + 7 :].strip("_- ")
    if upper.startswith("DCM4CHE") or class_uid.startswith("1.2.40.0.13.1"):
        return "dcm4che", name.split("-", 1)[1] if "-" in name else ""
    if upper.startswith("OFFIS_DCMTK") or class_uid.startswith("1.2.276.0.7230010.3"):
        return "dcmtk", digits_after("OFFIS_DCMTK") if upper.startswith("OFFIS_DCMTK") else ""
    return "", ""


def _called_titles(target: Target) -> list[str]:
    guesses = GUESSED_CALLED_AES if AE_TITLE_GUESSING in target.options else ()
    titles: list[str] = []
    for title in (*target.ae_titles, GENERIC_CALLED_AE, *guesses):
        title = title.strip()
        if title and len(title) <= 16 and title.isprintable() and title not in titles:
            titles.append(title)
    return titles


def _declared_name(obs: ServiceObservation, target: Target) -> str:
    return next((s.name for s in target.services if s.port == obs.port and s.name), "").lower()


def _is_dicom_port(obs: ServiceObservation, target: Target) -> bool:
    declared = _declared_name(obs, target)
    if declared:
        return declared.startswith("dicom")
    if obs.service:
        return obs.service.startswith("dicom")
    return obs.port in DICOM_PORTS


def _is_tls_port(obs: ServiceObservation, target: Target) -> bool:
    return (_declared_name(obs, target) or obs.service) in {"dicom-tls", "dicoms"}


def _findings(
    address: str, port: int, attempt: Attempt, guessed: bool = False
) -> list[FindingCandidate]:
    retrieval = sorted(name for name in attempt.accepted_contexts if name.endswith(("GET", "MOVE")))
    evidence: dict[str, Any] = {
        "called_ae": attempt.called_ae,
        "accepted_contexts": attempt.accepted_contexts,
        "retrieval_contexts_accepted": retrieval,
        "echo_ok": attempt.echo_ok,
        "implementation_class_uid": attempt.implementation_class_uid,
        "implementation_version_name": attempt.implementation_version_name,
    }
    if guessed:
        evidence["called_ae_guessed"] = True
    if attempt.query:
        evidence |= {
            "query": attempt.query,
            "matches": attempt.matches,
            "matches_capped": attempt.matches_capped,
            "attributes": attempt.attributes,
        }
    found = [
        FindingCandidate(
            check=OPEN_ASSOCIATION,
            severity="high",
            address=address,
            port=port,
            title=(
                f"The DICOM service on port {port} accepts a connection from any system "
                f"(unknown AE title accepted when calling {attempt.called_ae})"
            ),
            remediation=REMEDIATION,
            evidence=dict(evidence),
        )
    ]
    if attempt.matches > 0:
        more = "+" if attempt.matches_capped else ""
        found.append(
            FindingCandidate(
                check=QUERY_WITHOUT_AUTHORIZATION,
                severity="critical",
                address=address,
                port=port,
                title=(
                    f"The DICOM service on port {port} lists patient studies to anyone who asks "
                    f"({attempt.matches}{more} records returned to an unknown system)"
                ),
                remediation=QUERY_REMEDIATION,
                evidence=dict(evidence),
            )
        )
    return found


class Dicom(Probe):
    name = "dicom"
    default_ports = DICOM_PORTS

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        tls_ports = {
            (s.address, s.port)
            for s in ctx.observed
            if s.state is PortState.open and _is_tls_port(s, target)
        }
        ports = sorted(
            {
                (s.address, s.port)
                for s in ctx.observed
                if s.state is PortState.open and _is_dicom_port(s, target)
            }
        )
        if not ports:
            return ProbeResult(
                self.name,
                ProbeOutcome.ran,
                reason=N_("no open DICOM port"),
                checks=set(CHECKS),
                duration=time.monotonic() - started,
            )
        timeouts = Timeouts(connect=ctx.connect_timeout, read=ctx.read_timeout)
        titles = _called_titles(target)

        async def one(address: str, port: int) -> list[Attempt]:
            async with ctx.slot(address):
                return await asyncio.to_thread(
                    _port_attempts, address, port, titles, timeouts, (address, port) in tls_ports
                )

        outcomes = await asyncio.gather(*(one(a, p) for a, p in ports))
        services: list[ServiceObservation] = []
        findings: list[FindingCandidate] = []
        failures: list[str] = []
        for (address, port), attempts in zip(ports, outcomes, strict=True):
            answered = [a for a in attempts if a.state != "failed"]
            if not answered:
                failures.append(f"{address}:{port}: {attempts[-1].reason}")
                continue
            accepted = next((a for a in attempts if a.state == "accepted"), None)
            if accepted is None:
                services.append(ServiceObservation(address, port, PortState.open, service="dicom"))
                continue
            product, version = identify_product(
                accepted.implementation_class_uid, accepted.implementation_version_name
            )
            banner = " ".join(
                x
                for x in (accepted.implementation_version_name, accepted.implementation_class_uid)
                if x
            )
            services.append(
                ServiceObservation(
                    address,
                    port,
                    PortState.open,
                    service="dicom",
                    banner=banner,
                    product=product,
                    version=version,
                )
            )
            guessed = accepted.called_ae in GUESSED_CALLED_AES and accepted.called_ae not in {
                t.strip() for t in target.ae_titles
            }
            findings.extend(_findings(address, port, accepted, guessed))
        if failures:
            return ProbeResult(
                self.name,
                ProbeOutcome.failed,
                reason="; ".join(failures)[:300],
                services=services,
                findings=findings,
                duration=time.monotonic() - started,
            )
        return ProbeResult(
            self.name,
            ProbeOutcome.ran,
            services=services,
            findings=findings,
            checks=set(CHECKS),
            duration=time.monotonic() - started,
        )
