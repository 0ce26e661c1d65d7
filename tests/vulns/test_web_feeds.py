"""The web side of known vulnerabilities: the feeds page, the product search, detected software on
the asset page, re-matching from the asset form, and the finding's vulnerability details."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from flask import render_template
from sqlalchemy import func, select

from inventory.audit import AuditReport, ProbeOutcome, ProbeResult
from inventory.audit.probes.base import PortState, ServiceObservation
from inventory.models import FeedImport, Finding, SoftwareCandidate, Vulnerability
from inventory.services.audits import record_audit
from inventory.services.vuln_findings import vulnerabilities_of
from inventory.services.vuln_import import import_files
from tests.factories import PASSWORD, make_asset, make_user
from tests.vulns.data import KEV, NVD_SAMPLE

pytestmark = pytest.mark.usefixtures("fast_hashing")


def login(client, session, role="admin"):
    user = make_user(session, role)
    client.login(user.username, PASSWORD)
    return user


def upload(client, *files: tuple[bytes, str]):
    data = {"files": [(io.BytesIO(content), name) for content, name in files]}
    return client.submit(
        "/admin/feeds", data, page="/admin/feeds", content_type="multipart/form-data"
    )


def test_admin_imports_feeds_through_the_page(client, session):
    login(client, session)
    asset = make_asset(session, software="cpe:2.3:a:apache:http_server:2.4.49")
    page = client.get("/admin/feeds").get_data(as_text=True)
    assert "Vulnerability feeds" in page and "Never" in page
    response = upload(
        client, (NVD_SAMPLE.read_bytes(), "nvd-sample.json"), (KEV.read_bytes(), "kev.json")
    )
    assert response.status_code == 302
    page = client.get("/admin/feeds").get_data(as_text=True)
    assert "nvd-sample.json: 35 records (35 new, 0 updated, 0 unchanged)." in page
    assert "kev.json: 1404 records" in page
    assert "Every asset was matched again: 2 new findings" in page
    assert ">35<" in page and ">1404<" in page and "kev.json" in page
    checks = set(session.scalars(select(Finding.check_id).where(Finding.asset_id == asset.id)))
    assert checks == {"vuln.cve", "vuln.kev"}


def test_bad_upload_is_refused_with_a_message_and_nothing_changes(client, session):
    login(client, session)
    response = upload(
        client,
        (NVD_SAMPLE.read_bytes(), "nvd-sample.json"),
        (NVD_SAMPLE.read_bytes()[:9000], "cut.json"),
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "cut.json ends before its JSON does" in page
    assert session.scalar(select(func.count()).select_from(Vulnerability)) == 0
    assert session.scalar(select(func.count()).select_from(FeedImport)) == 0
    response = upload(client, (b"<html>not a feed</html>", "page.html"))
    assert response.status_code == 400 and "page.html is not valid JSON" in response.get_data(
        as_text=True
    )
    assert client.submit("/admin/feeds", {}, page="/admin/feeds").status_code == 400


def test_upload_limit_is_the_feeds_own_and_bigger_files_are_refused_cleanly(app, client, session):
    login(client, session)
    settings = app.extensions["inventory.settings"]
    # Other forms stop at [web] max_upload_mb; the feeds page has its own, larger limit.
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    kev = KEV.read_bytes()
    assert len(kev) > 1024 * 1024
    assert upload(client, (kev, "kev.json")).status_code == 302
    assert session.scalar(select(func.count()).select_from(FeedImport)) == 1
    settings.vulns.max_upload_mb = 1
    response = upload(client, (kev, "kev-again.json"))
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "larger than 1 MB, the limit of this page; nothing was imported" in page
    assert "inventory feeds import" in page
    assert session.scalar(select(func.count()).select_from(FeedImport)) == 1


def test_upload_without_the_form_token_is_refused(client, session):
    login(client, session)
    response = client.post(
        "/admin/feeds",
        data={"files": [(io.BytesIO(NVD_SAMPLE.read_bytes()), "nvd.json")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "This form has expired or was sent from elsewhere" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Vulnerability)) == 0


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_only_admins_import(client, session, role):
    login(client, session, role)
    assert client.get("/admin/feeds").status_code == 403
    assert "/admin/feeds" not in client.get("/assets").get_data(as_text=True)


def test_admins_find_the_feeds_page_in_the_navigation(client, session):
    login(client, session)
    nav = client.get("/assets").get_data(as_text=True).split('class="mainnav"', 1)[1]
    assert 'href="/admin/feeds"' in nav.split("</nav>", 1)[0]


def test_product_search(client, session):
    assert client.get("/vulns/products?q=orth").status_code in {302, 401}
    login(client, session, "viewer")
    import_files(session=session, files=[(NVD_SAMPLE, "nvd")], actor="t")
    items = client.get("/vulns/products?q=orth").get_json()
    assert {"vendor": "orthanc-server", "product": "orthanc", "part": "a"}.items() <= items[
        0
    ].items()
    assert items[0]["cpe"] == "cpe:2.3:a:orthanc-server:orthanc"
    assert client.get("/vulns/products?q=%25").get_json() == []


def test_asset_form_has_the_search_helper_and_its_script(client, session):
    login(client, session)
    page = client.get("/assets/new").get_data(as_text=True)
    assert 'id="cpe-helper"' in page and 'data-search-url="/vulns/products"' in page
    assert '<script src="/static/cpe-search.js" defer></script>' in page
    script = client.get("/static/cpe-search.js")
    assert script.status_code == 200 and b"escapeValue" in script.data


def edit(client, asset_id, **changes):
    page = f"/assets/{asset_id}/edit"
    html = client.get(page).get_data(as_text=True)
    assert "form" in html
    data = {
        "name": changes.pop("name"),
        "kind": "pacs",
        "addresses": changes.pop("addresses"),
        "criticality": "high",
        "exposure": "internal",
        **changes,
    }
    return client.submit(page, data)


def test_changing_the_version_in_the_form_closes_the_finding(client, session):
    login(client, session)
    import_files(session=session, files=[(NVD_SAMPLE, "nvd")], actor="t")
    response = client.submit(
        "/assets/new",
        {
            "name": "PACS",
            "kind": "pacs",
            "addresses": "10.1.2.3",
            "criticality": "high",
            "exposure": "internal",
            "software": "cpe:2.3:a:orthanc-server:orthanc:1.11.3",
        },
    )
    assert response.status_code == 302
    finding = session.scalars(select(Finding).where(Finding.subject == "CVE-2023-33466")).one()
    assert finding.status == "open"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Known vulnerability CVE-2023-33466 in orthanc-server orthanc 1.11.3" in page
    response = edit(
        client,
        finding.asset_id,
        name="PACS",
        addresses="10.1.2.3",
        software="cpe:2.3:a:orthanc-server:orthanc:1.12.0",
    )
    assert response.status_code == 302
    session.refresh(finding)
    assert finding.status == "fixed"


def test_detected_software_is_confirmed_on_the_asset_page(client, session):
    login(client, session)
    import_files(session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="t")
    asset = make_asset(session, addresses="127.0.0.9")
    services = [
        ServiceObservation(
            "127.0.0.9", 104, PortState.open, service="dicom", product="dcmtk", version="3.6.6"
        ),
        ServiceObservation(
            "127.0.0.9",
            21,
            PortState.open,
            service="ftp",
            banner="220 (vsFTPd 2.3.4)",
            product="vsFTPd",
            version="2.3.4",
        ),
    ]
    report = AuditReport(
        target=asset.name,
        started_at=datetime.now(UTC),
        results=[ProbeResult("tcp", ProbeOutcome.ran, services=services)],
    )
    record_audit(session=session, asset_id=asset.id, report=report, actor="tests")
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "Detected software" in page
    assert "cpe:2.3:a:offis:dcmtk:3.6.6:*:*:*:*:*:*:*" in page and "85%" in page
    assert "cpe:2.3:a:vsftpd_project:vsftpd:2.3.4:*:*:*:*:*:*:*" in page and "70%" in page
    assert "Waiting for a decision" in page
    dcmtk = session.scalars(
        select(SoftwareCandidate).where(SoftwareCandidate.cpe.startswith("cpe:2.3:a:offis"))
    ).one()
    response = client.submit(
        f"/assets/{asset.id}/software/{dcmtk.id}/confirmed", page=f"/assets/{asset.id}"
    )
    assert response.status_code == 302
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "is confirmed" in page and "Confirmed" in page
    assert "Known vulnerability CVE-2022-2119 in offis dcmtk 3.6.6" in page
    response = client.submit(
        f"/assets/{asset.id}/software/{dcmtk.id}/rejected", page=f"/assets/{asset.id}"
    )
    statuses = set(
        session.scalars(
            select(Finding.status).where(
                Finding.asset_id == asset.id, Finding.subject.like("CVE-2022-2%")
            )
        )
    )
    assert statuses == {"fixed"}
    assert (
        client.submit(
            f"/assets/{asset.id}/software/{dcmtk.id}/maybe", page=f"/assets/{asset.id}"
        ).status_code
        == 404
    )
    assert (
        client.submit(
            f"/assets/{asset.id}/software/99999/confirmed", page=f"/assets/{asset.id}"
        ).status_code
        == 404
    )


def test_viewers_see_detected_software_without_buttons(client, session):
    asset = make_asset(session, addresses="127.0.0.9")
    report = AuditReport(
        target=asset.name,
        started_at=datetime.now(UTC),
        results=[
            ProbeResult(
                "tcp",
                ProbeOutcome.ran,
                services=[
                    ServiceObservation(
                        "127.0.0.9",
                        104,
                        PortState.open,
                        service="dicom",
                        product="dcmtk",
                        version="3.6.6",
                    )
                ],
            )
        ],
    )
    record_audit(session=session, asset_id=asset.id, report=report, actor="tests")
    login(client, session, "viewer")
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "cpe:2.3:a:offis:dcmtk:3.6.6" in page and "/software/" not in page
    (cand,) = session.scalars(select(SoftwareCandidate)).all()
    assert (
        client.submit(
            f"/assets/{asset.id}/software/{cand.id}/confirmed", page=f"/assets/{asset.id}"
        ).status_code
        == 403
    )


def test_finding_vulnerability_details_render_from_evidence(app, client, session):
    from inventory.services import vulns

    import_files(session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="t")
    asset = make_asset(session, software="cpe:2.3:a:elasticsearch:elasticsearch:1.1.1")
    vulns.rematch(session=session)
    kev = session.scalars(
        select(Finding).where(
            Finding.asset_id == asset.id,
            Finding.check_id == "vuln.kev",
            Finding.subject == "CVE-2014-3120",
        )
    ).one()
    vulnerability = vulnerabilities_of(session=session, findings=[kev])[kev.id]
    with app.test_request_context("/"):
        html = render_template("feeds/_vuln_details.html", vulnerability=vulnerability)
    assert "Vulnerability CVE-2014-3120" in html
    assert "CVSS 3.1" in html and "<strong>8.1</strong>" in html  # v3.1 (CISA-ADP) before v2
    assert "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N" in html
    assert "In the KEV catalog since</dt><dd>2022-03-25" in html
    assert "Due date (CISA)</dt><dd>2022-04-15" in html
    assert "Elasticsearch" in html and 'rel="noreferrer noopener"' in html
    login(client, session, "viewer")
    page = client.get(f"/findings/{kev.id}").get_data(as_text=True)
    assert "is being exploited by attackers (CISA KEV since 2022-03-25)" in page
