"""Finding titles in the reader's language.

Probes store each finding's title as one English sentence (the CLI, the API and machines read
it as is). For people, the web pages and reports rebuild the same sentence from a translatable
template per check, filled with the finding's port, address and evidence; a finding whose
template cannot be filled (an older evidence shape, an unknown check) keeps its stored title.
Remediation texts are constants marked with N_ in the probes, so they translate as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from inventory.i18n import N_

Translate = Callable[[str], str]

TITLES: dict[str, str] = {
    "dicom.open-association": N_(
        "The DICOM service on port %(port)s accepts a connection from any system (unknown AE "
        "title accepted when calling %(called_ae)s)"
    ),
    "dicom.query-without-authorization": N_(
        "The DICOM service on port %(port)s lists patient studies to anyone who asks "
        "(%(matches)s records returned to an unknown system)"
    ),
    "http.cleartext": N_(
        "The web service on port %(port)s is not encrypted (http, no TLS): anyone on the "
        "network can read what it shows and the passwords typed in"
    ),
    "http.no-authentication": N_(
        "The web service on port %(port)s gives out data without asking for a password"
    ),
    "tls.weak": N_("The TLS set-up on port %(port)s is weak: %(weaknesses)s"),
    "ftp.anonymous-login": N_("The FTP server on port %(port)s lets anyone in without a password"),
    "ftp.cleartext": N_("The FTP server on port %(port)s sends passwords and files unencrypted"),
    "database.no-authentication": N_(
        "The %(product)s database on port %(port)s answers anyone, without a password"
    ),
    "remote-access.exposed": N_("%(service)s is reachable on port %(port)s"),
    "port.unexpected-open": N_("Port %(port)s/tcp (%(service)s) is open, not expected"),
    "audit.out-of-scope": N_("%(address)s is outside the audit scope and was not probed"),
    "auth.default-credentials": N_(
        "The web service on port %(port)s still accepts the factory login "
        "%(username)s / %(factory_password)s"
    ),
    "vuln.cve": N_("Known vulnerability %(cve)s in %(software)s"),
    "vuln.kev": N_(
        "%(cve)s in %(software)s is being exploited by attackers (CISA KEV since %(kev_added)s)"
    ),
}
# Checks whose sentence depends on what was found.
SMB_TITLES = {
    "both": N_(
        "Anyone on the network can list the shared folders on port %(port)s, and the file "
        "server still accepts SMBv1"
    ),
    "listing": N_("Anyone on the network can list the shared folders on port %(port)s"),
    "smbv1": N_("The file server on port %(port)s still accepts SMBv1"),
}
# Words that fill the templates and are themselves translatable.
TLS_WEAKNESSES = {
    "old-protocol": N_("TLS older than 1.2"),
    "expired": N_("certificate expired"),
    "not-yet-valid": N_("certificate not yet valid"),
    "self-signed": N_("self-signed certificate"),
    "wrong-host": N_("certificate for another name"),
}
REMOTE_SERVICES = {"telnet": "Telnet", "vnc": "VNC", "rdp": N_("Remote Desktop (RDP)")}
UNKNOWN_SERVICE = N_("unknown service")


def _params(
    check: str, port: int | None, address: str, evidence: Mapping[str, Any], tr: Translate
) -> dict[str, Any]:
    params: dict[str, Any] = {**evidence, "port": port, "address": address}
    if check == "dicom.query-without-authorization" and "matches" in evidence:
        params["matches"] = f"{evidence['matches']}{'+' if evidence.get('matches_capped') else ''}"
    elif check == "tls.weak" and "weaknesses" in evidence:
        params["weaknesses"] = ", ".join(
            tr(TLS_WEAKNESSES[w]) if w in TLS_WEAKNESSES else str(w) for w in evidence["weaknesses"]
        )
    elif check == "remote-access.exposed" and evidence.get("service") in REMOTE_SERVICES:
        params["service"] = tr(REMOTE_SERVICES[evidence["service"]])
    elif check == "port.unexpected-open":
        params["service"] = evidence.get("service") or tr(UNKNOWN_SERVICE)
    return params


def _template(check: str, evidence: Mapping[str, Any]) -> str | None:
    if check == "smb.guest-access":
        listed, smbv1 = "shares_listed" in evidence, bool(evidence.get("smbv1"))
        return SMB_TITLES["both" if listed and smbv1 else "listing" if listed else "smbv1"]
    return TITLES.get(check)


def finding_title(
    check: str,
    *,
    port: int | None,
    address: str,
    evidence: Mapping[str, Any] | None,
    stored: str,
    translate: Translate,
) -> str:
    """The finding's title in the language of `translate` (gettext), or `stored` when the
    check has no template or the evidence lacks what it needs."""
    template = _template(check, evidence or {})
    if template is None:
        return stored
    try:
        return translate(template) % _params(check, port, address, evidence or {}, translate)
    except (KeyError, TypeError, ValueError):
        return stored


def remediation(stored: str, translate: Translate) -> str:
    """Stored remediation texts are the probes' N_ constants: gettext finds them as they are."""
    return translate(stored) if stored else stored
