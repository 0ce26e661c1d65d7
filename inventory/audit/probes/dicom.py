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
timeout set from the context, while the per-host connection slot is held.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, _config
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

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


def _associate(
    address: str, port: int, calling: str, called: str, timeouts: Timeouts, tls: bool = False
) -> Attempt:
    ae = AE(ae_title=calling)
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
            waited = time.monotonic() - started
            why = (
                f"no association answer within {timeouts.read:g}s"
                if waited >= timeouts.read
                else "the peer closed, reset or answered with something that is not DICOM"
            )
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
                reason=("no DICOM answer on " + "; ".join(failures))[:300],
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
