"""Naming a service from its port and greeting, before the protocol probes look closer."""

from __future__ import annotations

WELL_KNOWN = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    80: "http",
    104: "dicom",
    139: "netbios-ssn",
    443: "https",
    445: "smb",
    2761: "dicom-iscl",
    2762: "dicom-tls",
    3389: "rdp",
    4242: "dicom",
    5900: "vnc",
    6379: "redis",
    8042: "http",
    8080: "http",
    8443: "https",
    9200: "elasticsearch",
    11112: "dicom",
    27017: "mongodb",
}


def identify(port: int, greeting: bytes) -> str:
    """The greeting wins over the port number: an FTP server on 2121 is FTP."""
    head = greeting[:64]
    if head.startswith(b"SSH-"):
        return "ssh"
    if head.startswith(b"RFB "):
        return "vnc"
    if head.startswith(b"220") and b"ftp" in greeting.lower():
        return "ftp"
    if head.startswith(b"220"):
        return "smtp" if b"smtp" in greeting.lower() else "ftp"
    if head[:1] == b"\xff":  # telnet option negotiation (IAC)
        return "telnet"
    return WELL_KNOWN.get(port, "")
