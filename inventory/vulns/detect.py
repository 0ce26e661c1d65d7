"""Software the probes saw, as CPE candidates with a confidence.

The probes store what a service says about itself (ObservedService: product, version, banner).
Here each known product becomes the CPE name NVD files it under, with a confidence that says how
much the version can be trusted for matching:

- 0.95: the product's own API gave its version (Orthanc ``/system``);
- 0.9: a database's API answered with its version (Elasticsearch, MongoDB, Redis);
- 0.85: the DICOM implementation version name (OFFIS_DCMTK_366, ORTHANC_1_11_3), set by the
  software itself but sometimes changed by integrators;
- 0.7: an HTTP ``Server`` header, an FTP greeting or the Samba version an SMB server gives,
  which administrators can change and Linux distributions keep unchanged while backporting
  fixes;
- 0.6: an SSH banner: distributions (Debian, Ubuntu, RHEL) patch OpenSSH without changing the
  upstream version it shows, so a match is often already fixed.

A service without a version gives no candidate: an unknown version matches only records that
affect every version, which would say nothing useful.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from inventory.vulns.cpe import build_cpe

__all__ = ["Candidate", "Observation", "candidates"]

# Lower-case product as the probes name it -> (part, vendor, product) as NVD names it.
PRODUCTS: dict[str, tuple[str, str, str]] = {
    "orthanc": ("a", "orthanc-server", "orthanc"),
    "dcmtk": ("a", "offis", "dcmtk"),
    "apache": ("a", "apache", "http_server"),
    "apache httpd": ("a", "apache", "http_server"),
    "nginx": ("a", "f5", "nginx"),
    "microsoft-iis": ("a", "microsoft", "internet_information_services"),
    "lighttpd": ("a", "lighttpd", "lighttpd"),
    "vsftpd": ("a", "vsftpd_project", "vsftpd"),
    "proftpd": ("a", "proftpd", "proftpd"),
    "pure-ftpd": ("a", "pureftpd", "pure-ftpd"),
    "filezilla server": ("a", "filezilla-project", "filezilla_server"),
    "elasticsearch": ("a", "elastic", "elasticsearch"),
    "mongodb": ("a", "mongodb", "mongodb"),
    "redis": ("a", "redis", "redis"),
    "openssh": ("a", "openbsd", "openssh"),
    "dropbear": ("a", "dropbear_ssh_project", "dropbear_ssh"),
    "samba": ("a", "samba", "samba"),
}
API_PRODUCTS = {"elasticsearch", "mongodb", "redis"}
_SSH = re.compile(r"^SSH-[\d.]+-(OpenSSH|dropbear)_([0-9][\w.]*?)(p\d+)?(?:[\s_-]|$)", re.I)
_VERSION = re.compile(r"^[0-9][\w.+~-]{0,39}$")
# DCMTK's implementation version name is its version without dots: OFFIS_DCMTK_366 is 3.6.6,
# OFFIS_DCMTK_3610 would be 3.6.10 (major and minor have one digit each).
_DCMTK_NAME = re.compile(r"^OFFIS_DCMTK_(\d)(\d)(\d+)\b", re.I)


class Observation(Protocol):
    """What an ObservedService row offers (the model itself fits)."""

    address: str
    port: int
    service: str
    product: str
    version: str
    banner: str


@dataclass(frozen=True)
class Candidate:
    cpe: str
    confidence: float
    source: str  # dicom, orthanc, database, http, smb, ftp, ssh
    seen: str
    address: str
    port: int


def _server_header(banner: str, fallback: str) -> str:
    """The Server header the HTTP probe kept in its banner ("Server: Apache/2.4.49; title")."""
    for part in banner.split("; "):
        if part.startswith("Server: "):
            return part[len("Server: ") :]
    return fallback


def _one(observed: Observation) -> Candidate | None:
    """`source` says which kind of sighting it is (the pages name it in the reader's language);
    `seen` is what was read, as it was sent (a banner, a header, a version)."""
    service = (observed.service or "").lower()
    product = (observed.product or "").strip().lower()
    version = (observed.version or "").strip()
    banner = observed.banner or ""
    update = "*"
    match = _SSH.match(banner)
    if match and not product:
        product, version = match.group(1).lower(), match.group(2)
        update = (match.group(3) or "-").lower() if product == "openssh" else "*"
        confidence, source, seen = 0.6, "ssh", banner
    elif service.startswith("dicom"):
        confidence, source = 0.85, "dicom"
        if re.fullmatch(r"\d+(?:_\d+)+", version):
            version = version.replace("_", ".")  # ORTHANC_1_11_3
        dcmtk = _DCMTK_NAME.match(banner)
        if product == "dcmtk" and dcmtk:
            version = ".".join(dcmtk.groups())
        seen = banner.split(" ", 1)[0] or f"{observed.product} {version}"
    elif product in API_PRODUCTS:
        confidence, source, seen = 0.9, "database", f"{observed.product} {version}"
    elif service in {"http", "https"} and product == "orthanc":
        confidence, source, seen = 0.95, "orthanc", f"Orthanc {version}"
    elif service in {"http", "https"}:
        confidence, source = 0.7, "http"
        seen = _server_header(banner, f"{observed.product}/{version}")
    elif service == "smb":
        confidence, source, seen = 0.7, "smb", f"{observed.product} {version}"
    elif service == "ftp":
        confidence, source, seen = 0.7, "ftp", banner or f"{observed.product} {version}"
        if product == "proftpd" and re.match(r"^[\d.]+[a-z]$", version):
            version, update = version[:-1], version[-1]  # NVD writes 1.3.5e as 1.3.5:e
    else:
        return None
    if product not in PRODUCTS or not version or not _VERSION.match(version):
        return None
    part, vendor, name = PRODUCTS[product]
    return Candidate(
        cpe=build_cpe(part, vendor, name, version, update),
        confidence=confidence,
        source=source,
        seen=seen[:255],
        address=observed.address,
        port=observed.port,
    )


def candidates(observed: Iterable[Observation]) -> list[Candidate]:
    """One candidate per CPE name (the most confident sighting), most confident first."""
    best: dict[str, Candidate] = {}
    for row in observed:
        candidate = _one(row)
        if candidate and (
            candidate.cpe not in best or candidate.confidence > best[candidate.cpe].confidence
        ):
            best[candidate.cpe] = candidate
    return sorted(best.values(), key=lambda c: (-c.confidence, c.cpe))
