"""Finding titles in the reader's language: each check's template, filled from a finding's port
and evidence, gives the probe's own English sentence, and a French sentence with the same facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.support import Translations

from inventory.audit import checks

CATALOGUE = Path(__file__).resolve().parents[2] / "inventory" / "translations"
FRENCH = Translations.load(str(CATALOGUE), ["fr"], domain="messages")

# (check, port, address, evidence, the title the probe stores)
CASES = [
    (
        "dicom.open-association",
        4242,
        {"called_ae": "ANY-SCP"},
        "The DICOM service on port 4242 accepts a connection from any system "
        "(unknown AE title accepted when calling ANY-SCP)",
    ),
    (
        "dicom.query-without-authorization",
        104,
        {"matches": 50, "matches_capped": True},
        "The DICOM service on port 104 lists patient studies to anyone who asks "
        "(50+ records returned to an unknown system)",
    ),
    ("ftp.anonymous-login", 21, {}, "The FTP server on port 21 lets anyone in without a password"),
    (
        "database.no-authentication",
        6379,
        {"product": "Redis"},
        "The Redis database on port 6379 answers anyone, without a password",
    ),
    (
        "tls.weak",
        443,
        {"weaknesses": ["expired", "self-signed"]},
        "The TLS set-up on port 443 is weak: certificate expired, self-signed certificate",
    ),
    (
        "remote-access.exposed",
        3389,
        {"service": "rdp"},
        "Remote Desktop (RDP) is reachable on port 3389",
    ),
    (
        "smb.guest-access",
        445,
        {"smbv1": True, "shares_listed": 3},
        "Anyone on the network can list the shared folders on port 445, and the file server "
        "still accepts SMBv1",
    ),
    ("smb.guest-access", 139, {"smbv1": True}, "The file server on port 139 still accepts SMBv1"),
    (
        "port.unexpected-open",
        8080,
        {"service": ""},
        "Port 8080/tcp (unknown service) is open, not expected",
    ),
]


@pytest.mark.parametrize(("check", "port", "evidence", "english"), CASES)
def test_titles_in_english_and_french(check, port, evidence, english):
    def title(translate):
        return checks.finding_title(
            check,
            port=port,
            address="192.168.1.10",
            evidence=evidence,
            stored="stored",
            translate=translate,
        )

    assert title(lambda s: s) == english
    french = title(FRENCH.gettext)
    assert french not in (english, "stored") and str(port) in french


def test_a_finding_whose_evidence_lacks_a_fact_keeps_its_stored_title():
    title = checks.finding_title(
        "dicom.open-association",
        port=104,
        address="192.168.1.10",
        evidence={},
        stored="The stored sentence",
        translate=FRENCH.gettext,
    )
    assert title == "The stored sentence"
    assert (
        checks.finding_title(
            "vendor.unknown-check",
            port=1,
            address="x",
            evidence={},
            stored="kept",
            translate=FRENCH.gettext,
        )
        == "kept"
    )


def test_probe_remediation_texts_have_french_translations():
    from inventory.audit.probes import dicom, ftp, http

    for text in (dicom.REMEDIATION, dicom.QUERY_REMEDIATION, ftp.ANONYMOUS_REMEDIATION):
        assert checks.remediation(text, FRENCH.gettext) != text
    assert "VPN" in checks.remediation(http._REMEDIATION, FRENCH.gettext)
