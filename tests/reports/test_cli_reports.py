"""`inventory report ...` as scripts run it (PRODUCT.md contract): generate in each format to a
file, list, export a stored report again (same content), refuse bad input with exit status 1.
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests import test_cli
from tests.test_cli import Cli

databases = test_cli.databases
cli = test_cli.cli


def test_generate_list_and_export(cli: Cli, tmp_path: Path):
    cli.seed(
        "name,addresses,kind,site\n"
        "PACS <b>Lyon</b>,127.42.99.1,pacs,Lyon\n"
        "Viewer,127.42.99.2,web-viewer,Paris\n"
    )
    outputs = {}
    for fmt in ("html", "pdf", "csv", "json"):
        target = tmp_path / "out" / f"report.{fmt}"
        done = cli(
            "report", "generate", "--format", fmt, "--output", str(target), "--scope", "site:lyon"
        )
        assert done.returncode == 0, done.stderr
        assert "1 assets, 0 open findings" in done.stderr
        outputs[fmt] = target.read_bytes()
    assert outputs["pdf"].startswith(b"%PDF")
    assert b"PACS &lt;b&gt;Lyon&lt;/b&gt;" in outputs["html"] and b"Viewer" not in outputs["html"]
    snapshot = json.loads(outputs["json"])
    assert snapshot["scope"] == {"type": "site", "value": "lyon"}
    listed = json.loads(cli("report", "list", "--format", "json").stdout)
    assert len(listed) == 4 and listed[0]["scope"] == "site:lyon"
    latest = listed[0]
    assert hashlib.sha256(outputs["json"]).hexdigest() == latest["sha256"]
    # The second report of the same scope is compared with the first.
    assert snapshot["baseline"] is not None
    again = cli("report", "export", str(latest["id"]), "--format", "json", "--output", "-")
    assert again.returncode == 0 and again.stdout.encode() == outputs["json"]
    table = cli("report", "list")
    assert "(4 reports)" in table.stdout


def test_bad_input_exits_1_with_a_reason(cli: Cli, tmp_path: Path):
    target = tmp_path / "r.pdf"
    bad_scope = cli(
        "report", "generate", "--format", "pdf", "--output", str(target), "--scope", "kind:toaster"
    )
    assert bad_scope.returncode == 1 and "toaster is not a kind of asset" in bad_scope.stderr
    unknown = cli(
        "report", "generate", "--format", "pdf", "--output", str(target), "--scope", "room:1"
    )
    assert unknown.returncode == 1 and "Choose which assets the report covers." in unknown.stderr
    assert not target.exists()
    schedule = cli("report", "generate", "--format", "csv", "--output", "-", "--schedule", "nope")
    assert schedule.returncode == 1 and "no report schedule called nope" in schedule.stderr
    assert cli("report", "generate", "--format", "docx", "--output", "-").returncode == 2
    assert cli("report", "export", "99", "--format", "csv", "--output", "-").returncode == 1
    assert json.loads(cli("report", "list", "--format", "json").stdout) == []
