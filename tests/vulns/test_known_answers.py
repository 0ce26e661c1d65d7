"""Every known answer of shared/data/vulns/README.md, end to end: the three real files imported
into the database (SQLite and PostgreSQL), one asset per CPE name declared, every asset matched,
then the findings (CVE, severity from CVSS, KEV dates) compared with the README.

The matcher's own tests (test_matching.py) check the same answers on the records in memory; here
they go through the criteria index, the fast path for single-node records and the findings.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from inventory.models import Finding, KevEntry, Vulnerability
from inventory.services import vulns
from inventory.services.vuln_import import import_files
from tests.factories import make_asset
from tests.vulns.data import KEV, NVD_RECENT, NVD_SAMPLE, full

# (README item, CPE name, CVE, affected?) - strict CPE matching (no vendor aliases).
ANSWERS = [
    (1, "cpe:2.3:a:orthanc-server:orthanc:1.11.3", "CVE-2023-33466", True),
    (1, "cpe:2.3:a:orthanc-server:orthanc:1.12.0", "CVE-2023-33466", False),
    (2, "cpe:2.3:a:orthanc-server:orthanc:1.5.7", "CVE-2025-0896", False),
    (3, "cpe:2.3:a:offis:dcmtk:3.6.6", "CVE-2022-2119", True),
    (3, "cpe:2.3:a:offis:dcmtk:3.6.7", "CVE-2022-2119", False),
    (4, "cpe:2.3:a:offis:dcmtk:3.6.3", "CVE-2019-1010228", True),
    (4, "cpe:2.3:a:offis:dcmtk:3.6.4", "CVE-2019-1010228", False),
    (5, "cpe:2.3:a:dicom:dcmtk:3.6.0", "CVE-2015-8979", True),
    (5, "cpe:2.3:a:offis:dcmtk:3.6.0", "CVE-2015-8979", False),
    (6, "cpe:2.3:a:elasticsearch:elasticsearch:1.1.1", "CVE-2014-3120", True),
    (6, "cpe:2.3:a:elasticsearch:elasticsearch:1.2", "CVE-2014-3120", False),
    (7, "cpe:2.3:a:vsftpd_project:vsftpd:2.3.4", "CVE-2011-2523", True),
    (7, "cpe:2.3:a:vsftpd_project:vsftpd:2.3.5", "CVE-2011-2523", False),
    (8, "cpe:2.3:a:apache:http_server:2.4.49", "CVE-2021-41773", True),
    (8, "cpe:2.3:a:apache:http_server:2.4.48", "CVE-2021-41773", False),
    (9, "cpe:2.3:o:microsoft:windows_7:-:sp1:*:*:*:*:*:*", "CVE-2017-0144", False),
    (10, "cpe:2.3:o:siemens:acuson_sc2000_firmware:4.0b", "CVE-2017-0144", True),
    (13, "cpe:2.3:a:openbsd:openssh:9.7:p1", "CVE-2024-6387", True),
    (13, "cpe:2.3:a:openbsd:openssh:9.8:p1", "CVE-2024-6387", False),
    (13, "cpe:2.3:a:openbsd:openssh:9.8:-", "CVE-2024-6387", True),
    (13, "cpe:2.3:a:openbsd:openssh:8.5:p1", "CVE-2024-6387", True),
    (13, "cpe:2.3:a:openbsd:openssh:8.4:p1", "CVE-2024-6387", False),
    (14, "cpe:2.3:a:samba:samba:4.5.9", "CVE-2017-7494", True),
    (14, "cpe:2.3:a:samba:samba:4.5.10", "CVE-2017-7494", False),
    (14, "cpe:2.3:a:samba:samba:4.4.14", "CVE-2017-7494", False),
    (14, "cpe:2.3:a:samba:samba:3.4.17", "CVE-2017-7494", False),
    (14, "cpe:2.3:a:samba:samba:3.6.25", "CVE-2017-7494", True),
    (15, "cpe:2.3:a:f5:nginx:1.20.0", "CVE-2021-23017", True),
    (15, "cpe:2.3:a:f5:nginx:1.20.1", "CVE-2021-23017", False),
    (15, "cpe:2.3:a:f5:nginx:0.6.17", "CVE-2021-23017", False),
    (15, "cpe:2.3:a:nginx:nginx:1.20.0", "CVE-2021-23017", False),
    (16, "cpe:2.3:a:elastic:elasticsearch:1.4.2", "CVE-2015-1427", True),
    (16, "cpe:2.3:a:elastic:elasticsearch:1.4.3", "CVE-2015-1427", False),
    (16, "cpe:2.3:a:elastic:elasticsearch:1.3.7", "CVE-2015-1427", True),
    (16, "cpe:2.3:a:elastic:elasticsearch:1.3.8", "CVE-2015-1427", False),
    (16, "cpe:2.3:a:elasticsearch:elasticsearch:1.4.2", "CVE-2015-1427", False),
    (16, "cpe:2.3:a:elastic:elasticsearch:1.1.1", "CVE-2014-3120", False),
    (17, "cpe:2.3:a:nextgen:mirth_connect:4.4.0", "CVE-2023-43208", True),
    (17, "cpe:2.3:a:nextgen:mirth_connect:4.4.1", "CVE-2023-43208", False),
]
# Item 9, the AND of EternalBlue: SMBv1 with a Windows it runs on is affected, the OS alone not.
ETERNALBLUE = [
    "cpe:2.3:a:microsoft:server_message_block:1.0",
    "cpe:2.3:o:microsoft:windows_7:-:sp1:*:*:*:*:*:*",
]
# KEV facts (items 1, 6-9, 11-17): CVE -> (dateAdded, dueDate or None, ransomware or None);
# None: not in KEV.
KEV_FACTS = {
    "CVE-2023-33466": None,
    "CVE-2014-3120": ("2022-03-25", "2022-04-15", None),
    "CVE-2011-2523": None,
    "CVE-2021-41773": ("2021-11-03", None, "Known"),
    "CVE-2017-0144": ("2022-02-10", "2022-08-10", "Known"),
    "CVE-2020-0796": ("2022-02-10", None, None),
    "CVE-2017-7494": ("2023-03-30", None, "Known"),
    "CVE-2015-1427": ("2022-03-25", None, "Unknown"),
    "CVE-2023-43208": ("2024-05-20", None, "Known"),
    "CVE-2018-13379": ("2021-11-03", None, None),
    "CVE-2024-6387": None,
    "CVE-2021-23017": None,
    "CVE-2025-6554": ("", None, None),  # item 12: in KEV (its date is not in the README)
}
# Item 11: the NVD records' cisaExploitAdd equals the KEV dateAdded.
CISA_EXPLOIT_ADD = [
    "CVE-2020-0796",
    "CVE-2017-0143",
    "CVE-2017-7494",
    "CVE-2015-1427",
    "CVE-2023-43208",
    "CVE-2018-13379",
]


@pytest.fixture
def matched(session):
    """The real files imported, one asset per answer, everything matched once (strict CPE)."""
    results = import_files(
        session=session,
        files=[(NVD_SAMPLE, "nvd"), (NVD_RECENT, "recent"), (KEV, "kev")],
        actor="tests",
    )
    assert [(r.records, r.created) for r in results] == [(35, 35), (94, 94), (1404, 1404)]
    assets = {}
    for number, (_, cpe, _, _) in enumerate(ANSWERS):
        assets[cpe] = make_asset(session, name=f"answer-{number}", software=full(cpe)).id
    assets["eternalblue"] = make_asset(session, name="smb", software="\n".join(ETERNALBLUE)).id
    vulns.rematch(session=session, options=vulns.VulnOptions(vendor_aliases=False))
    return session, assets


def cves_of(session, asset_id, check="vuln.cve"):
    return {
        f.subject: f
        for f in session.scalars(
            select(Finding).where(Finding.asset_id == asset_id, Finding.check_id == check)
        )
    }


def test_readme_answers(matched):
    """Items 1-10 and 13-17: affected or not, one asset each; then EternalBlue's AND (item 9)
    and the severity CVSS gives."""
    session, assets = matched
    wrong = []
    for item, cpe, cve, affected in ANSWERS:
        found = cves_of(session, assets[cpe])
        if (cve in found) is not affected:
            wrong.append(f"item {item}: {cpe} {'should' if affected else 'should not'} get {cve}")
        elif affected and found[cve].evidence["cpes"] != [full(cpe)]:
            wrong.append(f"item {item}: {cpe} matched as {found[cve].evidence['cpes']}")
    assert not wrong, "\n".join(wrong)

    found = cves_of(session, assets["eternalblue"])
    assert found["CVE-2017-0144"].evidence["platform"] == "matched"
    assert found["CVE-2017-0144"].evidence["cpes"] == [full(ETERNALBLUE[0])]
    kev = cves_of(session, assets["eternalblue"], "vuln.kev")["CVE-2017-0144"]
    assert kev.severity == "critical"
    assert (kev.evidence["kev_added"], kev.evidence["kev_due"]) == ("2022-02-10", "2022-08-10")
    assert kev.evidence["kev_ransomware"] == "Known"

    orthanc = cves_of(session, assets["cpe:2.3:a:orthanc-server:orthanc:1.11.3"])
    assert orthanc["CVE-2023-33466"].evidence["cvss_score"] == 8.8
    assert orthanc["CVE-2023-33466"].severity == "high"
    assert not cves_of(session, assets["cpe:2.3:a:orthanc-server:orthanc:1.11.3"], "vuln.kev")


def test_readme_kev_facts_and_unanalysed_records(matched):
    session, assets = matched
    entries = {e.cve_id: e for e in session.scalars(select(KevEntry))}
    assert len(entries) == 1404
    for cve, facts in KEV_FACTS.items():
        if facts is None:
            assert cve not in entries, cve
            continue
        entry = entries[cve]
        added, due, ransomware = facts
        if added:
            assert entry.date_added.isoformat() == added, cve
        if due:
            assert entry.due_date.isoformat() == due, cve
        if ransomware:
            assert entry.ransomware == ransomware, cve
    assert {"CVE-2017-0143", "CVE-2017-0145", "CVE-2017-0146", "CVE-2017-0147"} <= set(entries)
    records = {
        v.cve_id: v
        for v in session.scalars(
            select(Vulnerability).where(Vulnerability.cve_id.in_(CISA_EXPLOIT_ADD))
        )
    }
    for cve in CISA_EXPLOIT_ADD:
        assert records[cve].cisa_exploit_add == entries[cve].date_added, cve
    # Item 6: the NVD record carries cisaExploitAdd too.
    es = session.scalars(select(Vulnerability).where(Vulnerability.cve_id == "CVE-2014-3120"))
    assert es.one().cisa_exploit_add.isoformat() == "2022-03-25"
    # The KEV findings of the affected assets carry the same dates.
    httpd = cves_of(session, assets["cpe:2.3:a:apache:http_server:2.4.49"], "vuln.kev")
    assert httpd["CVE-2021-41773"].evidence["kev_added"] == "2021-11-03"
    mirth = cves_of(session, assets["cpe:2.3:a:nextgen:mirth_connect:4.4.0"], "vuln.kev")
    assert mirth["CVE-2023-43208"].evidence["kev_added"] == "2024-05-20"
    samba = cves_of(session, assets["cpe:2.3:a:samba:samba:4.5.9"], "vuln.kev")
    assert samba["CVE-2017-7494"].evidence["kev_ransomware"] == "Known"

    # Items 2 and 12: records without configurations are stored (with their scores and text)
    # but match nothing; CVE-2025-6554 is in KEV all the same.
    recent = list(
        session.scalars(select(Vulnerability).where(Vulnerability.status == "Received"))
    )
    assert len(recent) >= 94 and all(not v.configurations for v in recent)
    chrome = session.scalars(select(Vulnerability).where(Vulnerability.cve_id == "CVE-2025-6554"))
    assert chrome.one().configurations == []
    assert not session.scalars(select(Finding).where(Finding.subject == "CVE-2025-0896")).all()


def test_readme_vendor_aliases_when_turned_on(matched):
    """Items 5, 15 and 16 with vendor aliases (the default setting): found, and said so."""
    session, assets = matched
    vulns.rematch(session=session)  # default options: aliases on
    offis = cves_of(session, assets["cpe:2.3:a:offis:dcmtk:3.6.0"])
    assert offis["CVE-2015-8979"].evidence["vendor_alias"] == "dicom"
    nginx = cves_of(session, assets["cpe:2.3:a:nginx:nginx:1.20.0"])
    assert nginx["CVE-2021-23017"].evidence["vendor_alias"] == "f5"
    es = cves_of(session, assets["cpe:2.3:a:elasticsearch:elasticsearch:1.4.2"])
    assert es["CVE-2015-1427"].evidence["vendor_alias"] == "elastic"
    # The strict name still wins where it matches: no alias noted.
    strict = cves_of(session, assets["cpe:2.3:a:elastic:elasticsearch:1.4.2"])
    assert "vendor_alias" not in strict["CVE-2015-1427"].evidence
