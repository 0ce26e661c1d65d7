"""Vulnerability findings where people and scripts read them (the findings list and page, the
API, `inventory findings list`), and re-matching after edits made through the API and the
import, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from sqlmodel import Session

from inventory.models import Finding
from inventory.models.types import utcnow
from inventory.services import transfer, vulns
from inventory.services.assets import find_live_asset
from inventory.services.tokens import create_token
from inventory.services.vuln_import import import_files
from tests.factories import PASSWORD, make_asset, make_user
from tests.vulns.conftest import inventory
from tests.vulns.data import KEV, NVD_SAMPLE

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def feeds(session):
    import_files(session=session, files=[(NVD_SAMPLE, "nvd"), (KEV, "kev")], actor="tests")
    return session


def token(session, role="admin") -> dict[str, str]:
    user = make_user(session, role, username=f"script-{role}")
    _, secret = create_token(session=session, user_id=user.id, name="script")
    return {"Authorization": f"Bearer {secret}"}


def vuln_findings(session, asset_id) -> dict[str, Finding]:
    session.expire_all()
    return {
        f"{f.subject}/{f.check_id}": f
        for f in session.scalars(select(Finding).where(Finding.asset_id == asset_id))
    }


def test_api_gives_the_vulnerability_of_a_finding(client, feeds):
    session = feeds
    asset = make_asset(session, software="cpe:2.3:a:elasticsearch:elasticsearch:1.1.1")
    vulns.rematch(session=session)
    headers = token(session, "viewer")
    items = client.get("/api/v1/findings?check=vuln.kev", headers=headers).get_json()["items"]
    [kev] = [i for i in items if i["subject"] == "CVE-2014-3120"]
    v = kev["vulnerability"]
    assert v["cve"] == "CVE-2014-3120" and v["software"] == "elasticsearch elasticsearch 1.1.1"
    assert (v["cvss_score"], v["cvss_version"]) == (8.1, "3.1")
    assert v["cvss_vector"] == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"
    assert v["description"].startswith("The default configuration in Elasticsearch before 1.2")
    assert all(url.startswith("http") for url in v["references"]) and v["references"]
    assert v["kev"]["date_added"] == "2022-03-25" and v["kev"]["due_date"] == "2022-04-15"
    one = client.get(f"/api/v1/findings/{kev['id']}", headers=headers).get_json()
    assert one["vulnerability"] == v and one["events"][0]["new_status"] == "open"
    # Other findings have no such key, and the evidence is still only numbers and yes/no.
    assert all(isinstance(x, (int, float, bool)) for x in kev["evidence"].values())
    cve = next(
        i
        for i in client.get("/api/v1/findings?check=vuln.cve", headers=headers).get_json()["items"]
        if i["subject"] == "CVE-2014-3120"
    )
    assert cve["severity"] == "high" and cve["vulnerability"]["kev"]["name"]
    assert asset.id == cve["asset"]["id"]


def test_api_edits_rematch_the_asset(client, feeds):
    session = feeds
    headers = token(session)
    created = client.post(
        "/api/v1/assets",
        json={
            "name": "Mirth",
            "addresses": "10.4.0.1",
            "software": ["cpe:2.3:a:nextgen:mirth_connect:4.4.0"],
        },
        headers=headers,
    )
    assert created.status_code == 201
    asset_id = created.get_json()["id"]
    found = vuln_findings(session, asset_id)
    assert found["CVE-2023-43208/vuln.kev"].status == "open"
    patched = client.patch(
        f"/api/v1/assets/{asset_id}",
        json={"software": ["cpe:2.3:a:nextgen:mirth_connect:4.4.1"]},
        headers=headers,
    )
    assert patched.status_code == 200
    found = vuln_findings(session, asset_id)
    assert {f.status for f in found.values()} == {"fixed"}


def test_imports_rematch_the_assets_whose_software_changed(migrated, tmp_path):
    url, engine = migrated
    inventory(url, tmp_path, "feeds", "import", str(NVD_SAMPLE))
    path = tmp_path / "assets.csv"
    path.write_text("name,addresses,software\nPACS,10.5.0.1,cpe:2.3:a:offis:dcmtk:3.6.6\n")
    result = inventory(url, tmp_path, "assets", "import", str(path))
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        pacs_id = find_live_asset(session=session, name="PACS").id
        assert vuln_findings(session, pacs_id)["CVE-2022-2119/vuln.cve"].status == "open"
    path.write_text(path.read_text().replace("3.6.6", "3.6.7"))
    result = inventory(url, tmp_path, "assets", "import", str(path))
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        assert vuln_findings(session, pacs_id)["CVE-2022-2119/vuln.cve"].status == "fixed"
    # The web import (the same service, then the same re-match) on a file that changes nothing
    # about software leaves the findings alone.
    with Session(engine) as session:
        started = utcnow()
        csv = "name,addresses,software,site\nPACS,10.5.0.1,cpe:2.3:a:offis:dcmtk:3.6.7,Lyon\n"
        transfer.import_assets(session=session, content=csv.encode(), fmt="csv", actor="t")
        assert vulns.rematch_edited(session=session, since=started, options=None, actor="t") is None
        csv = csv.replace("3.6.7", "3.6.6")
        started = utcnow()
        transfer.import_assets(session=session, content=csv.encode(), fmt="csv", actor="t")
        again = vulns.rematch_edited(session=session, since=started, options=None, actor="t")
        assert again is not None and again.reopened >= 1
        assert vuln_findings(session, pacs_id)["CVE-2022-2119/vuln.cve"].status == "reopened"


def test_findings_pages_show_cvss_kev_and_the_record(client, feeds):
    session = feeds
    asset = make_asset(session, software="cpe:2.3:a:samba:samba:4.5.9")
    vulns.rematch(session=session)
    user = make_user(session, "viewer")
    client.login(user.username, PASSWORD)
    page = client.get("/findings?check=vuln.kev").get_data(as_text=True)
    assert "CVE-2017-7494 in samba samba 4.5.9 is being exploited by attackers" in page
    assert "CVSS 9.8 (v3.1)" in page
    kev = vuln_findings(session, asset.id)["CVE-2017-7494/vuln.kev"]
    page = client.get(f"/findings/{kev.id}").get_data(as_text=True)
    section = page.split('id="vulnerability"', 1)[1]
    assert "Samba since version 3.5.0" in section  # the NVD description
    assert "<strong>9.8</strong>" in section
    assert "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" in section
    assert "In the KEV catalog since</dt><dd>2023-03-30" in section
    assert "Known to be used in ransomware campaigns" in section
    assert re.search(r'<a href="https://[^"]+" rel="noreferrer noopener"', section)
    # The generic evidence list (counts) gives way to the vulnerability's own section.
    assert "digest" not in page


def test_cli_findings_list_gives_the_vulnerability(migrated, tmp_path):
    url, engine = migrated
    with Session(engine) as session:
        make_asset(session, name="web", software="cpe:2.3:a:apache:http_server:2.4.49")
    inventory(url, tmp_path, "feeds", "import", str(NVD_SAMPLE), str(KEV))
    result = inventory(url, tmp_path, "findings", "list", "--check", "vuln.kev", "--format", "json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["check"] == "vuln.kev" and row["asset"] == "web"
    assert row["vulnerability"]["kev"]["date_added"] == "2021-11-03"
    assert row["vulnerability"]["cvss_score"] == 7.5
    description = row["vulnerability"]["description"]
    assert description.startswith("A flaw was found in a change made to path normalization")
    csv_out = inventory(url, tmp_path, "findings", "list", "--format", "csv")
    assert csv_out.exit_code == 0 and csv_out.output.splitlines()[0].startswith("asset,address")
    assert len(csv_out.output.splitlines()) == 3  # the header, vuln.cve and vuln.kev
