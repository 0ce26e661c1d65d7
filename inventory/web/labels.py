"""Words shown for stored values (kinds, criticalities, roles...) and for field names."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

LABELS = {
    "kind": {
        "pacs": _l("PACS (image archive)"),
        "modality": _l("Modality (scanner, X-ray, ultrasound...)"),
        "viewer-workstation": _l("Viewing workstation"),
        "web-viewer": _l("Web viewer"),
        "nas": _l("NAS (network storage)"),
        "database": _l("Database"),
        "server": _l("Server"),
        "network-device": _l("Network device"),
        "workstation": _l("Workstation"),
        "other": _l("Other"),
    },
    "criticality": {
        "low": _l("Low"),
        "medium": _l("Medium"),
        "high": _l("High"),
        "critical": _l("Critical"),
    },
    "exposure": {
        "internal": _l("Internal network only"),
        "vpn": _l("Through the VPN"),
        "public": _l("Public (Internet)"),
    },
    "role": {
        "viewer": _l("Viewer (reads)"),
        "auditor": _l("Auditor (reads, runs audits, accepts risks)"),
        "admin": _l("Administrator (everything)"),
    },
    "action": {
        "created": _l("created"),
        "updated": _l("changed"),
        "archived": _l("archived"),
        "restored": _l("restored"),
    },
    "source": {
        "web": _l("web form"),
        "import": _l("import"),
        "api": _l("API"),
        "cli": _l("command line"),
    },
    "severity": {
        "info": _l("Info"),
        "low": _l("Low"),
        "medium": _l("Medium"),
        "high": _l("High"),
        "critical": _l("Critical"),
    },
    "finding_status": {
        "open": _l("Open"),
        "reopened": _l("Reopened"),
        "accepted": _l("Accepted risk"),
        "fixed": _l("Fixed"),
    },
    "audit_outcome": {
        "completed": _l("Completed"),
        "unreachable": _l("No answer"),
        "failed": _l("Failed"),
        "interrupted": _l("Interrupted"),
    },
    "probe_outcome": {
        "ran": _l("ran"),
        "failed": _l("failed"),
        "skipped": _l("skipped"),
    },
    "trigger": {
        "user": _l("web page"),
        "cli": _l("command line"),
        "scheduler": _l("schedule"),
        "api": _l("API"),
        "sensor": _l("sensor"),
    },
    "optional_check": {
        "default-credentials": _l(
            "Try the factory passwords of known PACS and web viewers (logs in, reads nothing)"
        ),
        "ae-title-guessing": _l(
            "Guess common called AE titles (ORTHANC, DCM4CHEE, PACS...) when the declared ones "
            "are refused"
        ),
    },
    "software_source": {
        "dicom": _l("DICOM implementation version name"),
        "orthanc": _l("Orthanc REST API (/system)"),
        "database": _l("Database API"),
        "http": _l("HTTP Server header"),
        "smb": _l("SMB server (Samba version)"),
        "ftp": _l("FTP greeting"),
        "ssh": _l("SSH banner"),
    },
    "field": {
        "name": _l("Name"),
        "addresses": _l("Addresses"),
        "hostnames": _l("Host names"),
        "mac": _l("MAC address"),
        "kind": _l("Kind"),
        "site": _l("Site"),
        "zone": _l("Network zone"),
        "owner": _l("Owner / contact"),
        "criticality": _l("Criticality"),
        "holds_patient_data": _l("Holds patient data"),
        "exposure": _l("Intended exposure"),
        "expected_services": _l("Expected services"),
        "ae_titles": _l("DICOM AE titles"),
        "software": _l("Software (CPE 2.3)"),
        "tags": _l("Tags"),
        "audit_interval": _l("Audit interval"),
        "optional_checks": _l("Optional checks"),
        "notes": _l("Notes"),
        "reason": _l("Reason"),
        "until": _l("Accepted until"),
    },
}


def label(group: str, value: object) -> str:
    """The translated word for a stored value; the value itself when none is known."""
    text = LABELS.get(group, {}).get(str(value))
    return str(text) if text is not None else str(value)


def choices(group: str) -> list[tuple[str, str]]:
    return [(key, str(text)) for key, text in LABELS[group].items()]
