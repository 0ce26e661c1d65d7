"""Web services: cleartext HTTP, data paths that answer without credentials, web-PACS fingerprints.

For every open web port (declared or identified http/https, or a usual web port) the probe first
tries a TLS handshake to choose https or http, then asks a few read-only GET requests: `/`, the
Orthanc REST API (`/system`, `/patients`, `/studies`) and DICOMweb (`/dicom-web/studies`,
`/wado-rs/studies`). Bodies are read with a hard byte cap, each request has a deadline, redirects
are followed by hand (3 at most, same host only).

Privacy (PRODUCT.md): an answer from a data path is evidence; only its status, content type, size
and the number of items leave the probe, never a value.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

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
from inventory.audit.probes.tls import NotTLS, handshake, server_name
from inventory.i18n import N_

CLEARTEXT = "http.cleartext"
NO_AUTHENTICATION = "http.no-authentication"
WEB_PORTS = frozenset({80, 443, 8042, 8080, 8443})
WEB_SERVICES = frozenset({"http", "https"})
DATA_PATHS = ("/system", "/patients", "/studies", "/dicom-web/studies", "/wado-rs/studies")
PATIENT_PATHS = frozenset({"/patients", "/studies", "/dicom-web/studies", "/wado-rs/studies"})
MAX_BODY_BYTES = 256 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "Vigie-audit (read-only inventory check)"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_SERVER = re.compile(r"^\s*([A-Za-z][\w .-]*?)(?:/(\S+))?(?:\s|$)")
_FINGERPRINTS = (  # (marker in title or body, product)
    ("orthanc explorer", "Orthanc"),
    ("orthanc", "Orthanc"),
    ("osirix", "OsiriX web portal"),
    ("horos", "Horos web portal"),
    ("meddream", "MedDream"),
)
_REMEDIATION = N_(
    "Put the viewer behind TLS (https) and a login; let users reach it only through the VPN, and "
    "close the port at the firewall for everyone else."
)


class _PortFailed(Exception):
    """The port did not answer HTTP in a usable way (timeout, garbage, reset)."""


@dataclass
class Answer:
    """One GET, reduced to what may leave the probe (the body stays in memory here only)."""

    path: str
    status: int
    content_type: str = ""
    size: int = 0
    truncated: bool = False
    redirects: int = 0
    location: str = ""  # where a redirect we did not follow pointed (scheme://host:port only)
    final_scheme: str = ""
    server: str = ""
    body: bytes = b""

    def json(self) -> Any:
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def data_like(self) -> bool:
        if self.status != 200:
            return False
        ctype = self.content_type
        if not (ctype.endswith("json") or ctype.endswith("+json")):
            return False
        if self.truncated:  # a huge JSON answer is still data
            return True
        return isinstance(self.json(), (list, dict))

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "content_type": self.content_type}
        out["bytes"] = self.size
        if self.truncated:
            out["truncated"] = True
        if self.redirects:
            out["redirects"] = self.redirects
        if self.location:
            out["redirect_to"] = self.location
        doc = self.json() if self.status == 200 else None
        if isinstance(doc, list):
            out["items"] = len(doc)
        elif isinstance(doc, dict):
            out["keys"] = len(doc)
        return out


def web_ports(target: Target, ctx: ProbeContext) -> list[tuple[str, int]]:
    """Open ports whose service or number says web, plus declared http/https services."""
    seen = {(s.address, s.port): s.state for s in ctx.observed}
    ports = {
        (s.address, s.port)
        for s in ctx.observed
        if s.state is PortState.open and (s.service in WEB_SERVICES or s.port in WEB_PORTS)
    }
    for service in target.services:
        if service.protocol == "tcp" and service.name in WEB_SERVICES:
            for address in target.addresses:
                key = (str(address), service.port)
                if seen.get(key, PortState.open) is PortState.open:
                    ports.add(key)
    return sorted(ports)


def _origin(url: httpx.URL | str) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}"


def _same_host(url: str, address: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.strip("[]").lower() == address.lower()


async def web_scheme(
    ctx: ProbeContext, address: str, port: int, server_name: str | None = None
) -> str:
    """https when the port completes a TLS handshake, else http; OSError when it cannot be
    reached at all. With the TLS probe's server name, its handshake serves both."""
    try:
        await handshake(ctx, address, port, server_name)
        return "https"
    except (NotTLS, TimeoutError):  # many HTTP servers wait in silence for a request line
        return "http"


def base_url(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}"


@functools.cache
def _no_verification() -> ssl.SSLContext:
    """What httpx's verify=False makes, once for the process rather than once per client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def web_client(ctx: ProbeContext) -> httpx.AsyncClient:
    """The probes' HTTP client: timeouts from the context, no redirects followed on its own, no
    proxy, no certificate check (the TLS probe judges certificates), one connection."""
    timeout = httpx.Timeout(
        connect=ctx.connect_timeout,
        read=ctx.read_timeout,
        write=ctx.read_timeout,
        pool=ctx.connect_timeout,
    )
    return httpx.AsyncClient(
        verify=_no_verification(),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,  # no proxy: the request goes to the asset, nowhere else
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


class WebProbe(Probe):
    name = "http"

    async def check(self, target: Target, ctx: ProbeContext) -> ProbeResult:
        started = time.monotonic()
        results = await asyncio.gather(
            *(self._port(target, ctx, address, port) for address, port in web_ports(target, ctx))
        )
        judged = [r for r in results if isinstance(r, tuple)]
        services = [service for service, _ in judged]
        findings = [f for _, port_findings in judged for f in port_findings]
        failures = [r for r in results if isinstance(r, str)]
        return ProbeResult(
            self.name,
            ProbeOutcome.failed if failures else ProbeOutcome.ran,
            reason="; ".join(failures)[:300],
            services=services,
            findings=findings,
            checks={CLEARTEXT, NO_AUTHENTICATION},
            duration=time.monotonic() - started,
        )

    async def _port(
        self, target: Target, ctx: ProbeContext, address: str, port: int
    ) -> tuple[ServiceObservation, list[FindingCandidate]] | str:
        try:
            scheme = await web_scheme(ctx, address, port, server_name(target))
        except OSError as exc:
            return f"{address}:{port}: {exc.__class__.__name__}"
        base = base_url(scheme, address, port)
        try:
            async with web_client(ctx) as client:
                try:
                    root = await self._get(client, ctx, address, base, "/")
                except _PortFailed as exc:
                    return f"{address}:{port}: {exc}"
                answers = [root]
                for path in DATA_PATHS:
                    try:
                        answers.append(await self._get(client, ctx, address, base, path))
                    except _PortFailed:
                        continue  # one path that misbehaves does not hide the others
        except Exception as exc:  # noqa: BLE001 - whatever the peer did, report it as a failure
            return f"{address}:{port}: {exc.__class__.__name__}"
        return self._judge(target, address, port, scheme, answers)

    async def _get(
        self, client: httpx.AsyncClient, ctx: ProbeContext, address: str, base: str, path: str
    ) -> Answer:
        url = base + path
        redirects = 0
        deadline = ctx.connect_timeout + 2 * ctx.read_timeout
        while True:
            try:
                async with ctx.slot(address), asyncio.timeout(deadline):
                    answer = await self._fetch(client, url, path)
            except TimeoutError as exc:
                raise _PortFailed(f"no complete answer to GET {path} within {deadline:g}s") from exc
            except httpx.HTTPError as exc:
                raise _PortFailed(f"GET {path}: {exc.__class__.__name__}") from exc
            answer.redirects = redirects
            if answer.status not in (301, 302, 303, 307, 308):
                return answer
            target = urljoin(url, answer.location)
            if not target.startswith(("http://", "https://")) or not _same_host(target, address):
                answer.location = _origin(target) if "://" in target else ""
                return answer
            if redirects >= MAX_REDIRECTS:
                answer.location = _origin(target)
                return answer
            redirects += 1
            url = target

    async def _fetch(self, client: httpx.AsyncClient, url: str, path: str) -> Answer:
        async with client.stream("GET", url) as response:
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) >= MAX_BODY_BYTES:
                    truncated = True
                    del body[MAX_BODY_BYTES:]
                    break
            encoding = response.headers.get("content-encoding", "identity").lower()
            if encoding not in ("", "identity"):
                truncated = True  # compressed despite our ask: do not decode (bomb-safe)
            return Answer(
                path=path,
                status=response.status_code,
                content_type=response.headers.get("content-type", "").split(";")[0].strip(),
                size=len(body),
                truncated=truncated,
                location=response.headers.get("location", ""),
                final_scheme=response.url.scheme,
                server=printable(response.headers.get("server", "").encode("latin-1"), 80),
                body=bytes(body),
            )

    def _judge(
        self, target: Target, address: str, port: int, scheme: str, answers: list[Answer]
    ) -> tuple[ServiceObservation, list[FindingCandidate]]:
        root = answers[0]
        by_path = {a.path: a for a in answers}
        title = ""
        match = _TITLE.search(root.body) if root.status == 200 else None
        if match:
            title = printable(match.group(1), 120)
        product, version = _fingerprint(answers, title)
        # A page title is the site's text and could name a patient: it is kept in the banner
        # only when it is a known product's own title.
        shown_title = title if _is_product_title(title) else ""
        banner = "; ".join(p for p in (root.server and f"Server: {root.server}", shown_title) if p)
        observation = ServiceObservation(
            address,
            port,
            PortState.open,
            service=scheme,
            banner=banner[:200],
            product=product,
            version=version,
        )
        evidence = {a.path: a.evidence() for a in answers}
        findings: list[FindingCandidate] = []
        open_paths = [a.path for a in answers if a.data_like()]
        if open_paths:
            findings.append(
                FindingCandidate(
                    check=NO_AUTHENTICATION,
                    severity="critical",
                    address=address,
                    port=port,
                    title=(
                        f"The web service on port {port}{f' ({product})' if product else ''} "
                        "gives out data without asking for a password"
                    ),
                    remediation=_REMEDIATION,
                    evidence={"scheme": scheme, "open_paths": open_paths, "paths": evidence},
                )
            )
        to_https = root.location.startswith("https://") or root.final_scheme == "https"
        if scheme == "http" and not to_https:
            serves_patients = any(p in PATIENT_PATHS for p in open_paths)
            critical = target.holds_patient_data or serves_patients
            findings.append(
                FindingCandidate(
                    check=CLEARTEXT,
                    severity="critical" if critical else "high",
                    address=address,
                    port=port,
                    title=(
                        f"The web service on port {port} is not encrypted (http, no TLS): "
                        "anyone on the network can read what it shows and the passwords typed in"
                    ),
                    remediation=_REMEDIATION,
                    evidence={
                        "scheme": "http",
                        "root": by_path["/"].evidence(),
                        "holds_patient_data": target.holds_patient_data,
                        "serves_data": bool(open_paths),
                    },
                )
            )
        return observation, findings


_PRODUCT_TITLES = (
    *(marker for marker, _ in _FINGERPRINTS),
    "welcome to nginx",
    "apache2 debian default page",
    "apache2 ubuntu default page",
    "iis windows server",
    "synology",
    "diskstation",
    "qnap",
    "dcm4chee",
    "conquest",
)


def _is_product_title(title: str) -> bool:
    lower = title.lower()
    return any(marker in lower for marker in _PRODUCT_TITLES)


def _fingerprint(answers: list[Answer], title: str) -> tuple[str, str]:
    """Product and version from the Orthanc API, page markers, DICOMweb or the Server header."""
    by_path = {a.path: a for a in answers}
    system = by_path.get("/system")
    doc = system.json() if system and system.status == 200 else None
    if isinstance(doc, dict) and "Name" in doc and "Version" in doc:
        return "Orthanc", printable(str(doc["Version"]).encode("latin-1", "replace"), 40)
    root = by_path["/"]
    haystack = (title + " " + root.location).lower()
    if root.status == 200 and root.content_type.startswith("text/html"):
        haystack += " " + root.body[:MAX_BODY_BYTES].decode("latin-1").lower()
    if "/app/explorer.html" in haystack:
        return "Orthanc", ""
    for marker, product in _FINGERPRINTS:
        if marker in haystack:
            return product, ""
    for path in ("/dicom-web/studies", "/wado-rs/studies"):
        answer = by_path.get(path)
        if answer and answer.content_type == "application/dicom+json":
            return "DICOMweb", ""
    server = next((a.server for a in answers if a.server), "")
    match = _SERVER.match(server)
    if match:
        return match.group(1).strip(), (match.group(2) or "")[:40]
    return "", ""
