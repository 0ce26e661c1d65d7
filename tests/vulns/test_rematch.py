"""Re-matching assets against imported feeds: vuln.cve / vuln.kev findings and their lifecycle,
detected software candidates, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from inventory.models import (
    CandidateStatus,
    Finding,
    FindingEvent,
    FindingStatus,
    ObservedService,
    SoftwareCandidate,
    VulnMatchState,
)
from inventory.models.types import utcnow
from inventory.services import assets as asset_service
from inventory.services import vulns
from inventory.services.findings import accept_risk, findings_of, get_finding
from inventory.services.vuln_findings import vulnerabilities_of
from inventory.services.vuln_import import import_files
from tests.factories import make_asset
from tests.vulns.data import KEV, NVD_SAMPLE


@pytest.fixture
def feeds(session):
    import_files(session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests")
    return session


def findings(session, asset_id, check=None):
    statement = select(Finding).where(Finding.asset_id == asset_id)
    if check:
        statement = statement.where(Finding.check_id == check)
    return {f.subject + "/" + f.check_id: f for f in session.scalars(statement)}


def set_software(session, asset, *cpes):
    data = asset_service.asset_to_data(asset)
    data.software = list(cpes)
    asset_service.update_asset(session=session, asset_id=asset.id, data=data, actor="tests")


def test_declared_software_gets_cve_findings_with_cvss(feeds):
    session = feeds
    pacs = make_asset(session, software="cpe:2.3:a:orthanc-server:orthanc:1.11.3")
    make_asset(session, software="cpe:2.3:a:orthanc-server:orthanc:1.12.0")
    result = vulns.rematch(session=session)
    assert result.opened == 1 and result.assets == 2
    found = findings(session, pacs.id)
    assert list(found) == ["CVE-2023-33466/vuln.cve"]
    finding = found["CVE-2023-33466/vuln.cve"]
    assert finding.severity == "high" and finding.status == "open"
    assert finding.title == "Known vulnerability CVE-2023-33466 in orthanc-server orthanc 1.11.3"
    assert finding.address == "10.0." + finding.address.split("10.0.", 1)[1]
    evidence = finding.evidence
    assert evidence["cvss_score"] == 8.8 and evidence["cvss_version"] == "3.1"
    assert evidence["cvss_vector"].startswith("CVSS:3.1/AV:N")
    assert evidence["kev"] is False and evidence["source"] == "declared"
    # The record's text is read from the feed's table when shown, not copied into each finding.
    assert "description" not in evidence
    shown = vulnerabilities_of(session=session, findings=[finding])[finding.id]
    assert shown["description"].startswith("Orthanc before 1.12.0")
    assert shown["references"][0].startswith("https://discourse.orthanc-server.org/")
    assert (shown["cvss_score"], shown["cvss_version"], shown["kev"]) == (8.8, "3.1", None)
    events = session.scalars(
        select(FindingEvent).where(FindingEvent.finding_id == finding.id)
    ).all()
    assert [(e.old_status, e.new_status) for e in events] == [(None, "open")]


def test_kev_findings_are_critical_with_dates(feeds):
    session = feeds
    es = make_asset(session, software="cpe:2.3:a:elasticsearch:elasticsearch:1.1.1")
    vulns.rematch(session=session)
    found = findings(session, es.id)
    kev = found["CVE-2014-3120/vuln.kev"]
    assert kev.severity == "critical"
    assert kev.evidence["kev_added"] == "2022-03-25" and kev.evidence["kev_due"] == "2022-04-15"
    assert "CISA KEV since 2022-03-25" in kev.title
    assert found["CVE-2014-3120/vuln.cve"].evidence["kev"] is True
    # CVE-2015-1427 files Elasticsearch under the vendor `elastic`: matched through the alias.
    aliased = found["CVE-2015-1427/vuln.cve"]
    assert aliased.evidence["vendor_alias"] == "elastic"
    strict = vulns.VulnOptions(vendor_aliases=False)
    vulns.rematch(session=session, options=strict)
    assert findings(session, es.id)["CVE-2015-1427/vuln.cve"].status == "fixed"


def test_changing_the_version_fixes_and_reopens(feeds):
    session = feeds
    pacs = make_asset(session, software="cpe:2.3:a:offis:dcmtk:3.6.6")
    vulns.rematch(session=session)
    before = {k for k, f in findings(session, pacs.id).items() if f.status == "open"}
    assert "CVE-2022-2119/vuln.cve" in before
    set_software(session, pacs, "cpe:2.3:a:offis:dcmtk:3.6.7")
    result = vulns.rematch(session=session, asset_ids=[pacs.id])
    after = findings(session, pacs.id)
    assert after["CVE-2022-2119/vuln.cve"].status == "fixed"
    assert after["CVE-2022-2119/vuln.cve"].fixed_at is not None
    assert result.fixed >= 1
    set_software(session, pacs, "cpe:2.3:a:offis:dcmtk:3.6.6")
    vulns.rematch(session=session)
    finding = findings(session, pacs.id)["CVE-2022-2119/vuln.cve"]
    assert finding.status == "reopened" and finding.fixed_at is None
    events = session.scalars(
        select(FindingEvent).where(FindingEvent.finding_id == finding.id).order_by(FindingEvent.id)
    ).all()
    assert [(e.old_status, e.new_status, e.note) for e in events] == [
        (None, "open", ""),
        ("open", "fixed", "no longer matches"),
        ("fixed", "reopened", "matches again"),
    ]


def test_accepted_risks_stay_accepted_until_their_date(feeds):
    session = feeds
    ftp = make_asset(session, software="cpe:2.3:a:vsftpd_project:vsftpd:2.3.4")
    vulns.rematch(session=session)
    finding = findings(session, ftp.id)["CVE-2011-2523/vuln.cve"]
    accept_risk(
        session=session,
        finding_id=finding.id,
        actor="tests",
        reason="isolated VLAN",
        until=utcnow() + timedelta(days=30),
    )
    vulns.rematch(session=session)
    assert findings(session, ftp.id)["CVE-2011-2523/vuln.cve"].status == "accepted"
    vulns.rematch(session=session, now=utcnow() + timedelta(days=31))
    assert findings(session, ftp.id)["CVE-2011-2523/vuln.cve"].status == "reopened"


def test_unchanged_rematch_only_moves_last_seen(feeds):
    """Nothing new: the findings' rows are not rewritten, yet every page shows them seen at the
    new match (the date is kept once per asset)."""
    session = feeds
    asset = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
    vulns.rematch(session=session)
    events = session.scalar(select(func.count()).select_from(FindingEvent))
    later = utcnow() + timedelta(hours=1)
    result = vulns.rematch(session=session, now=later)
    assert result.opened == result.fixed == result.reopened == 0 and result.still == 2
    stored = findings(session, asset.id)["CVE-2021-41773/vuln.kev"]
    assert stored.last_seen < later  # the row itself was left alone
    session.expire_all()
    shown = {
        f.subject + "/" + f.check_id: f for f in findings_of(session=session, asset_id=asset.id)
    }
    finding = shown["CVE-2021-41773/vuln.kev"]
    assert finding.last_seen == later and finding.first_seen < later
    assert get_finding(session=session, finding_id=finding.id).last_seen == later
    session.commit()  # showing the date wrote nothing
    session.expire_all()
    assert findings(session, asset.id)["CVE-2021-41773/vuln.kev"].last_seen < later
    assert session.scalar(select(func.count()).select_from(FindingEvent)) == events
    # A feed import's re-match (other CVEs changed) sees the asset's findings again too.
    latest = later + timedelta(hours=1)
    vulns.rematch(session=session, cves={"CVE-2017-7494"}, now=latest)
    session.expire_all()
    assert get_finding(session=session, finding_id=finding.id).last_seen == latest
    session.expire_all()
    assert findings(session, asset.id)["CVE-2021-41773/vuln.kev"].last_seen < later


def test_unchanged_asset_still_gets_its_expired_acceptance_reopened(feeds):
    session = feeds
    asset = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
    vulns.rematch(session=session)
    finding = findings(session, asset.id)["CVE-2021-41773/vuln.cve"]
    accept_risk(
        session=session,
        finding_id=finding.id,
        reason="vendor patch next week",
        until=(utcnow() + timedelta(days=2)).date(),
        actor="tests",
    )
    result = vulns.rematch(session=session, now=utcnow() + timedelta(days=1))
    assert result.reopened == 0
    assert findings(session, asset.id)["CVE-2021-41773/vuln.cve"].status == "accepted"
    result = vulns.rematch(session=session, now=utcnow() + timedelta(days=5))
    assert result.reopened == 1 and result.still == 1
    session.expire_all()
    assert findings(session, asset.id)["CVE-2021-41773/vuln.cve"].status == "reopened"


def test_the_digest_only_spares_work_when_it_vouches_for_the_findings(feeds):
    """A scoped re-match (a feed import) that changed an asset's findings clears its digest, and
    an asset without one has its findings compared again by the next full re-match."""
    session = feeds
    asset = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
    vulns.rematch(session=session)
    digest = session.get(VulnMatchState, asset.id).digest
    assert digest
    session.execute(update(Finding).where(Finding.asset_id == asset.id).values(status="fixed"))
    session.commit()
    assert vulns.rematch(session=session, cves={"CVE-2021-41773"}).reopened == 2
    session.expire_all()
    assert session.get(VulnMatchState, asset.id).digest == ""
    session.execute(update(Finding).where(Finding.asset_id == asset.id).values(status="fixed"))
    session.commit()
    assert vulns.rematch(session=session).reopened == 2
    session.expire_all()
    assert session.get(VulnMatchState, asset.id).digest == digest


def test_archived_assets_are_left_alone(feeds):
    session = feeds
    asset = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
    vulns.rematch(session=session)
    asset_service.archive_asset(session=session, asset_id=asset.id, actor="tests")
    result = vulns.rematch(session=session)
    assert result.assets == 0 and result.fixed == 0
    assert findings(session, asset.id)["CVE-2021-41773/vuln.cve"].status == "open"


def observe(session, asset, port, service, product="", version="", banner=""):
    """What an audit would store, then what recording it does for known vulnerabilities."""
    session.add(
        ObservedService(
            asset_id=asset.id,
            address="10.9.0.1",
            port=port,
            service=service,
            product=product,
            version=version,
            banner=banner,
        )
    )
    session.commit()
    vulns.after_audit(session=session, asset_id=asset.id, options=None, actor="tests")


def test_detected_software_is_used_when_confident_or_confirmed(feeds):
    session = feeds
    asset = make_asset(session)
    observe(session, asset, 8042, "http", "Orthanc", "1.11.3")
    observe(session, asset, 104, "dicom", "dcmtk", "3.6.6")
    observe(session, asset, 22, "ssh", banner="SSH-2.0-OpenSSH_9.7p1 Debian-5")
    cands = {c.cpe: c for c in vulns.candidates_of(session=session, asset_id=asset.id)}
    orthanc = cands["cpe:2.3:a:orthanc-server:orthanc:1.11.3:*:*:*:*:*:*:*"]
    dcmtk = cands["cpe:2.3:a:offis:dcmtk:3.6.6:*:*:*:*:*:*:*"]
    ssh = cands["cpe:2.3:a:openbsd:openssh:9.7:p1:*:*:*:*:*:*"]
    assert orthanc.confidence == 0.95 and dcmtk.confidence == 0.85 and ssh.confidence == 0.6
    vulns.rematch(session=session)
    found = findings(session, asset.id)
    # Orthanc's own API is trusted at once (threshold 0.9); DICOM and SSH wait for a person.
    assert found["CVE-2023-33466/vuln.cve"].evidence["source"] == "detected"
    assert found["CVE-2023-33466/vuln.cve"].port == 8042
    assert not any(k.startswith("CVE-2022-2119") for k in found)
    assert not any(k.startswith("CVE-2024-6387") for k in found)
    vulns.decide_candidate(
        session=session,
        asset_id=asset.id,
        candidate_id=dcmtk.id,
        decision="confirmed",
        actor="admin",
    )
    assert findings(session, asset.id)["CVE-2022-2119/vuln.cve"].status == "open"
    vulns.decide_candidate(
        session=session,
        asset_id=asset.id,
        candidate_id=dcmtk.id,
        decision="rejected",
        actor="admin",
    )
    assert findings(session, asset.id)["CVE-2022-2119/vuln.cve"].status == "fixed"
    lower = vulns.VulnOptions(auto_confirm_confidence=0.5)
    vulns.rematch(session=session, options=lower)
    found = findings(session, asset.id)
    assert found["CVE-2024-6387/vuln.cve"].status == "open"  # ssh at 0.6 >= 0.5
    assert found["CVE-2022-2119/vuln.cve"].status == "fixed"  # rejected stays rejected


def test_a_new_version_inherits_the_decision(feeds):
    session = feeds
    asset = make_asset(session)
    observe(session, asset, 104, "dicom", "dcmtk", "3.6.6")
    (cand,) = vulns.candidates_of(session=session, asset_id=asset.id)
    vulns.decide_candidate(
        session=session,
        asset_id=asset.id,
        candidate_id=cand.id,
        decision="confirmed",
        actor="admin",
    )
    row = session.scalars(select(ObservedService).where(ObservedService.asset_id == asset.id)).one()
    row.version = "3.6.7"
    session.commit()
    vulns.after_audit(session=session, asset_id=asset.id, options=None, actor="tests")
    (cand,) = session.scalars(
        select(SoftwareCandidate).where(SoftwareCandidate.asset_id == asset.id)
    ).all()
    assert (
        cand.cpe.startswith("cpe:2.3:a:offis:dcmtk:3.6.7")
        and cand.status == CandidateStatus.confirmed
    )
    assert findings(session, asset.id)["CVE-2022-2119/vuln.cve"].status == FindingStatus.fixed


def test_decisions_are_checked(feeds):
    from inventory.errors import InvalidInput, NotFound

    session = feeds
    asset = make_asset(session)
    other = make_asset(session)
    observe(session, asset, 104, "dicom", "dcmtk", "3.6.6")
    (cand,) = vulns.candidates_of(session=session, asset_id=asset.id)
    with pytest.raises(InvalidInput):
        vulns.decide_candidate(
            session=session, asset_id=asset.id, candidate_id=cand.id, decision="maybe", actor="a"
        )
    with pytest.raises(NotFound):
        vulns.decide_candidate(
            session=session,
            asset_id=other.id,
            candidate_id=cand.id,
            decision="confirmed",
            actor="a",
        )


def test_feed_import_then_rematch_finds_assets_declared_before(session):
    """Records imported after the asset was declared find it without any probe."""
    asset = make_asset(session, software="cpe:2.3:a:samba:samba:4.5.9")
    assert vulns.rematch(session=session).opened == 0
    results, result = vulns.import_and_rematch(
        session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests"
    )
    assert [r.created for r in results] == [35, 1404] and result.opened == 2
    assert (
        findings(session, asset.id)["CVE-2017-7494/vuln.kev"].evidence["kev_ransomware"] == "Known"
    )


def test_an_import_rematches_only_what_it_changed(session, tmp_path):
    """Re-importing the same files touches nothing; a corrected record fixes its findings and
    leaves the others alone; a KEV catalog that drops a CVE fixes only its vuln.kev finding."""
    import json

    results, first = vulns.import_and_rematch(
        session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests"
    )
    assert len(results[0].changed) == 35 and len(results[1].changed) == 1404
    pacs = make_asset(session, software="cpe:2.3:a:orthanc-server:orthanc:1.11.3")
    web = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
    vulns.rematch(session=session)
    before = {**findings(session, pacs.id), **findings(session, web.id)}
    assert set(before) == {
        "CVE-2023-33466/vuln.cve",
        "CVE-2021-41773/vuln.cve",
        "CVE-2021-41773/vuln.kev",
    }
    seen = {key: f.last_seen for key, f in before.items()}

    results, again = vulns.import_and_rematch(
        session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests"
    )
    assert [r.changed for r in results] == [set(), set()]
    assert (again.opened, again.fixed, again.still) == (0, 0, 0)
    session.expire_all()
    assert {k: f.last_seen for k, f in findings(session, pacs.id).items()} == {
        "CVE-2023-33466/vuln.cve": seen["CVE-2023-33466/vuln.cve"]
    }

    document = json.loads(NVD_SAMPLE.read_text())
    record = next(
        v["cve"] for v in document["vulnerabilities"] if v["cve"]["id"] == "CVE-2023-33466"
    )
    record["lastModified"] = "2027-01-01T00:00:00.000"
    record["configurations"][0]["nodes"][0]["cpeMatch"][0]["versionEndExcluding"] = "1.11.0"
    corrected = tmp_path / "corrected.json"
    corrected.write_text(json.dumps(document))
    catalog = json.loads(KEV.read_text())
    catalog["dateReleased"] = "2026-01-01T00:00:00.000Z"
    catalog["vulnerabilities"] = [
        v for v in catalog["vulnerabilities"] if v["cveID"] != "CVE-2021-41773"
    ]
    smaller = tmp_path / "kev.json"
    smaller.write_text(json.dumps(catalog))
    results, update = vulns.import_and_rematch(
        session=session, files=[(corrected, "corrected"), (smaller, "kev")], actor="tests"
    )
    assert [r.changed for r in results] == [{"CVE-2023-33466"}, {"CVE-2021-41773"}]
    assert (update.fixed, update.opened) == (2, 0) and update.still == 1
    after = {**findings(session, pacs.id), **findings(session, web.id)}
    assert after["CVE-2023-33466/vuln.cve"].status == "fixed"  # 1.11.3 is past the new range
    assert after["CVE-2021-41773/vuln.kev"].status == "fixed"  # no longer in KEV
    assert after["CVE-2021-41773/vuln.cve"].status == "open"
    assert after["CVE-2021-41773/vuln.cve"].evidence["kev"] is False


def test_an_audit_that_saw_the_same_software_costs_no_matching(feeds):
    session = feeds
    asset = make_asset(session)
    observe(session, asset, 8042, "http", "Orthanc", "1.11.3")  # matched: 95% >= 90%
    assert findings(session, asset.id)["CVE-2023-33466/vuln.cve"].status == "open"
    # The next audit sees the same: nothing to match.
    assert vulns.after_audit(session=session, asset_id=asset.id, options=None, actor="t") is None
    # An audit that sees a low-confidence banner only: what matching uses is the same, too.
    observe(session, asset, 22, "ssh", banner="SSH-2.0-OpenSSH_9.7p1 Debian-5")
    assert vulns.after_audit(session=session, asset_id=asset.id, options=None, actor="t") is None
    # Orthanc upgraded: matched again, the finding is fixed.
    row = session.scalars(
        select(ObservedService).where(
            ObservedService.asset_id == asset.id, ObservedService.port == 8042
        )
    ).one()
    row.version = "1.12.0"
    session.commit()
    result = vulns.after_audit(session=session, asset_id=asset.id, options=None, actor="t")
    assert result is not None and result.fixed == 1
    assert findings(session, asset.id)["CVE-2023-33466/vuln.cve"].status == "fixed"
