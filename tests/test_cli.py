"""The `inventory` command as users and scripts run it: the installed entry point, in a subprocess.

Each test gets its own database: an empty one where `init` itself is under test, otherwise a copy of
one database initialised once per backend (SQLite file copy, PostgreSQL `CREATE DATABASE ...
TEMPLATE`), which keeps the many subprocesses affordable.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlmodel import Session

from inventory.db import make_engine
from inventory.services import transfer
from inventory.services.assets import live_assets
from inventory.services.users import authenticate, find_user, list_users
from tests.conftest import create_postgres_database, drop_postgres_database

INVENTORY = str(Path(sys.executable).with_name("inventory"))
ADMIN_PASSWORD = "template admin password"

RICH_CSV = (
    "name,addresses,hostnames,mac,kind,site,zone,owner,criticality,holds_patient_data,exposure,"
    "expected_services,ae_titles,software,tags,audit_interval,notes\n"
    "PACS radiologie,192.168.10.5; 2001:db8::5,pacs.clinic.local,00:1b:63:84:45:e6,pacs,Lyon,"
    "radiology,Dr Martin,critical,yes,vpn,4242/tcp dicom; 443/tcp https,PACS_RADIO; STORE SCP,"
    "cpe:2.3:a:orthanc-server:orthanc:1.12.1,dicom imaging,36h,"
    '"Line one, with ""quotes"";\nline two"\n'
    "Échographe,10.3.0.1,,,modality,Hôpital Nord,,,medium,no,internal,,,,,,\n"
)
BAD_CSV = (
    "name,addresses,kind,audit_interval\n"
    "Good one,10.0.0.1,pacs,7d\n"
    "Bad address,10.0.0.300,nas,\n"
    "Bad kind and interval,10.0.0.3,toaster,soon\n"
    "Also good,10.0.0.4,server,\n"
    ",10.0.0.5,server,\n"
)


# --- databases ------------------------------------------------------------------------------


@dataclass
class Databases:
    """Fresh databases of one backend: empty ones, or copies of one initialised template."""

    backend: str
    root: Path
    created: list[str] = field(default_factory=list)
    template: str | None = None

    def _pg_create(self, template: str | None = None) -> str:
        url = create_postgres_database("vigie_cli", template=template)
        self.created.append(url)
        return url

    def empty(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.root / f'{uuid.uuid4().hex[:8]}.db'}"
        return self._pg_create()

    def initialised(self) -> str:
        """A database after `inventory init` (admin password: ADMIN_PASSWORD)."""
        if self.template is None:
            self.template = self.empty()
            result = run(
                ["init"],
                url=self.template,
                cwd=self.root,
                env={"INVENTORY_ADMIN_PASSWORD": ADMIN_PASSWORD},
            )
            assert result.returncode == 0, result.stderr
        if self.backend == "sqlite":
            source = Path(self.template.removeprefix("sqlite:///"))
            copy = self.root / f"{uuid.uuid4().hex[:8]}.db"
            for suffix in ("", "-wal"):  # a write-ahead log not yet checkpointed belongs to it
                if Path(f"{source}{suffix}").exists():
                    shutil.copyfile(f"{source}{suffix}", f"{copy}{suffix}")
            return f"sqlite:///{copy}"
        return self._pg_create(template=self.template.rsplit("/", 1)[1])

    def drop_all(self) -> None:
        for url in self.created:
            drop_postgres_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    root = tmp_path_factory.mktemp(f"cli-{request.param}")
    dbs = Databases(request.param, root)
    yield dbs
    dbs.drop_all()


# --- running the command --------------------------------------------------------------------


def run(
    args: list[str],
    *,
    url: str,
    cwd: Path,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`inventory ARGS` with only INVENTORY_DATABASE_URL (and `env`) set among Vigie's variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
    environ["INVENTORY_DATABASE_URL"] = url
    environ.update(env or {})
    result = subprocess.run(
        [INVENTORY, *args],
        cwd=cwd,
        env=environ,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL if input is None else None,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@dataclass
class Cli:
    url: str
    cwd: Path

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None):
        return run(list(args), url=self.url, cwd=self.cwd, input=input, env=env)

    def session(self) -> Session:
        return Session(make_engine(self.url), expire_on_commit=False)

    def password_works(self, username: str, password: str) -> bool:
        with self.session() as session:
            return (
                authenticate(session=session, username=username, password=password, client="tests")
                is not None
            )

    def assets(self) -> list[dict]:
        """`inventory assets list --format json`."""
        result = self("assets", "list", "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def names(self) -> list[str]:
        """Names of the live assets, read directly (cheaper than one more subprocess)."""
        with self.session() as session:
            return sorted(a.name for a in live_assets(session=session))

    def seed(self, content: str) -> None:
        """Import a CSV directly, for tests about what comes after an import."""
        with self.session() as session:
            transfer.import_assets(
                session=session, content=content.encode(), fmt="csv", actor="tests"
            )

    def usernames(self) -> list[str]:
        with self.session() as session:
            return sorted(u.username for u in list_users(session=session))


@pytest.fixture
def cli(databases: Databases, tmp_path: Path) -> Cli:
    """The command on an initialised database of its own."""
    return Cli(databases.initialised(), tmp_path)


@pytest.fixture
def empty_cli(databases: Databases, tmp_path: Path) -> Cli:
    """The command on an empty database, before `inventory init`."""
    return Cli(databases.empty(), tmp_path)


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- init -----------------------------------------------------------------------------------


def test_init_creates_the_admin_once_and_is_safe_to_repeat(empty_cli):
    first = empty_cli("init")
    assert first.returncode == 0, first.stderr
    assert "Database ready" in first.stdout
    assert "user name: admin" in first.stdout
    password = re.search(r"password:\s+(\S+)", first.stdout).group(1)
    assert "shown only once" in first.stdout
    assert empty_cli.password_works("admin", password)

    second = empty_cli("init")
    assert second.returncode == 0, second.stderr
    assert "Database ready" in second.stdout
    assert password not in second.stdout + second.stderr and "password" not in second.stdout
    users = json.loads(empty_cli("users", "list", "--format", "json").stdout)
    assert [(u["username"], u["role"], u["active"]) for u in users] == [("admin", "admin", True)]
    assert empty_cli.password_works("admin", password), "a second init changes nothing"


def test_init_uses_the_admin_password_from_the_environment(empty_cli):
    chosen = "the chosen admin password"
    result = empty_cli("init", env={"INVENTORY_ADMIN_PASSWORD": chosen})
    assert result.returncode == 0, result.stderr
    assert chosen not in result.stdout and "INVENTORY_ADMIN_PASSWORD" in result.stdout
    assert empty_cli.password_works("admin", chosen)


def test_init_refuses_a_too_short_admin_password(empty_cli):
    result = empty_cli("init", env={"INVENTORY_ADMIN_PASSWORD": "short"})
    assert result.returncode == 1
    assert "at least 10 characters" in result.stderr
    retry = empty_cli("init")
    assert retry.returncode == 0 and "user name: admin" in retry.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["assets", "export", "--format", "csv"],
        ["assets", "import", "in.csv"],
        ["users", "add", "bob", "--role", "viewer"],
    ],
)
def test_commands_before_init_say_to_run_init(empty_cli, command):
    write(empty_cli.cwd, "in.csv", "name\nPACS\n")
    result = empty_cli(*command)
    assert result.returncode == 1
    assert "run `inventory init`" in result.stderr


def test_unreachable_database_is_a_message(tmp_path):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    result = run(["assets", "list"], url=url, cwd=tmp_path)
    assert result.returncode == 1 and "cannot open the database" in result.stderr
    result = run(["init"], url=url, cwd=tmp_path)
    assert result.returncode == 1 and "cannot create the schema" in result.stderr


def test_unknown_export_format_is_a_usage_error(tmp_path):
    result = run(
        ["assets", "export", "--format", "xml"],
        url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "--format" in result.stderr


def test_help_needs_no_database(tmp_path):
    for args in (["--help"], ["serve", "--help"], ["assets", "import", "--help"]):
        result = run(args, url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    serve_help = run(["serve", "--help"], url="sqlite:///unused.db", cwd=tmp_path).stdout
    assert "--host" in serve_help and "--port" in serve_help and "--no-scheduler" in serve_help
    assert not (tmp_path / "unused.db").exists() and not (tmp_path / "var").exists()


# --- users ----------------------------------------------------------------------------------


def test_users_add_with_the_password_on_stdin(cli):
    result = cli("users", "add", "carol", "--role", "auditor", input="a long enough password\n")
    assert result.returncode == 0, result.stderr
    assert "Account carol (auditor) created." in result.stdout
    assert "password" not in result.stdout
    assert cli.password_works("carol", "a long enough password")
    with cli.session() as session:
        assert find_user(session=session, username="carol").role == "auditor"


def test_users_add_with_a_generated_password(cli):
    result = cli("users", "add", "dave", "--role", "viewer", input="")
    assert result.returncode == 0, result.stderr
    password = re.search(r"password:\s+(\S+)", result.stdout).group(1)
    assert "shown only once" in result.stdout
    assert cli.password_works("dave", password)


@pytest.mark.parametrize("args", [["--role", "superuser"], ["--role", "ADMIN "], []])
def test_users_add_with_a_bad_role_is_a_usage_error(tmp_path, args):
    # Checked before the database is opened: the same on every backend.
    result = run(
        ["users", "add", "eve", *args], url=f"sqlite:///{tmp_path / 'db.sqlite'}", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "--role" in result.stderr
    assert not (tmp_path / "db.sqlite").exists()


def test_users_add_refuses_a_taken_name(cli):
    assert cli("users", "add", "frank", "--role", "viewer", input="").returncode == 0
    result = cli("users", "add", "FRANK", "--role", "admin", input="")
    assert result.returncode == 1
    assert "A user called FRANK already exists." in result.stderr
    result = cli("users", "add", "admin", "--role", "viewer", input="")
    assert result.returncode == 1 and "already exists" in result.stderr


def test_users_add_refuses_bad_input(cli):
    for name, password, message in [
        ("gina", "short\n", "at least 10 characters"),
        ("bad name!", "a long enough password\n", "User names have 2 to 64 letters"),
    ]:
        result = cli("users", "add", name, "--role", "viewer", input=password)
        assert result.returncode == 1
        assert message in result.stderr
    assert cli.usernames() == ["admin"]


# --- assets import --------------------------------------------------------------------------


def test_import_a_good_file(cli):
    path = write(cli.cwd, "clinic.csv", RICH_CSV)
    result = cli("assets", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "2 added, 0 updated, 0 unchanged." in result.stdout
    records = {r["name"]: r for r in cli.assets()}
    assert sorted(records) == ["PACS radiologie", "Échographe"]
    pacs = records["PACS radiologie"]
    assert pacs["addresses"] == ["192.168.10.5", "2001:db8::5"]
    assert pacs["expected_services"] == ["443/tcp https", "4242/tcp dicom"]
    assert pacs["holds_patient_data"] is True and pacs["audit_interval"] == "36h"
    assert pacs["notes"] == 'Line one, with "quotes";\nline two'
    again = cli("assets", "import", str(path))
    assert again.returncode == 0 and "0 added, 0 updated, 2 unchanged." in again.stdout


def test_import_a_json_file_and_from_stdin(cli):
    document = {
        "assets": [{"name": "Web viewer", "addresses": ["172.16.0.8"], "kind": "web-viewer"}]
    }
    path = write(cli.cwd, "viewer.json", json.dumps(document))
    assert cli("assets", "import", str(path)).returncode == 0
    result = cli(
        "assets", "import", "-", "--format", "csv", input="name,addresses\nNAS,10.1.0.30\n"
    )
    assert result.returncode == 0, result.stderr
    assert cli.names() == ["NAS", "Web viewer"]


def test_import_a_bad_file_reports_every_line_and_writes_nothing(cli):
    path = write(cli.cwd, "bad.csv", BAD_CSV)
    result = cli("assets", "import", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any("line 3" in line and "10.0.0.300 is not an IP address" in line for line in lines), (
        result.stderr
    )
    assert any("line 4" in line and "toaster is not one of" in line for line in lines), (
        result.stderr
    )
    assert any("line 4" in line and "soon is not a duration" in line for line in lines), (
        result.stderr
    )
    assert any("line 6" in line and "A name is required." in line for line in lines), result.stderr
    assert not any(re.search(r"line [25]\b", line) for line in lines), "good lines are not reported"
    assert "nothing was imported" in result.stderr
    assert result.stdout == ""
    assert cli.names() == []


def test_dry_run_checks_and_writes_nothing(cli):
    good = write(cli.cwd, "clinic.csv", RICH_CSV)
    result = cli("assets", "import", "--dry-run", str(good))
    assert result.returncode == 0, result.stderr
    assert "2 rows are valid (2 new, 0 updates); nothing was written (--dry-run)." in result.stdout
    bad = write(cli.cwd, "bad.csv", BAD_CSV)
    result = cli("assets", "import", "--dry-run", str(bad))
    assert result.returncode == 1 and "line 3" in result.stderr
    assert cli.names() == []


def test_unusable_files_are_a_message(cli):
    for content, name, message in [
        (b"", "empty.csv", "The file is empty."),
        (b"name,colour\nPACS,blue\n", "colour.csv", "Unknown column colour"),
        (b"{broken", "broken.json", "The file is not valid JSON"),
        (bytes(range(256)) * 4, "garbage.bin", "line 1"),
    ]:
        result = cli("assets", "import", str(write(cli.cwd, name, content)))
        assert result.returncode == 1, name
        assert message in result.stderr, name
    assert cli.names() == []


def test_import_of_a_missing_file_is_a_usage_error(tmp_path):
    result = run(
        ["assets", "import", "no-such-file.csv"],
        url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "no-such-file.csv" in result.stderr


# --- export, list and the round trip --------------------------------------------------------


def test_export_to_stdout_and_to_a_file(cli):
    cli.seed(RICH_CSV)
    as_csv = cli("assets", "export", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted(r["name"] for r in rows) == ["PACS radiologie", "Échographe"]
    assert as_csv.stdout.splitlines()[0].startswith("name,addresses,")

    as_json = cli("assets", "export", "--format", "json")
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)
    assert document["format"] == "vigie-assets"
    assert sorted(a["name"] for a in document["assets"]) == ["PACS radiologie", "Échographe"]

    for fmt, expected in (("csv", as_csv.stdout), ("json", as_json.stdout)):
        out = cli.cwd / f"out.{fmt}"
        result = cli("assets", "export", "--format", fmt, "--output", str(out))
        assert result.returncode == 0 and result.stdout == ""
        assert str(out) in result.stderr
        assert out.read_text(encoding="utf-8") == expected


def test_export_then_import_into_a_fresh_database_gives_the_same_export(cli, databases, tmp_path):
    cli.seed(RICH_CSV)
    first_csv = cli("assets", "export", "--format", "csv").stdout
    first_json = cli("assets", "export", "--format", "json").stdout
    (tmp_path / "export.csv").write_text(first_csv, encoding="utf-8")
    (tmp_path / "export.json").write_text(first_json, encoding="utf-8")

    from_csv = Cli(databases.initialised(), tmp_path)
    assert from_csv("assets", "import", str(tmp_path / "export.csv")).returncode == 0
    assert from_csv("assets", "export", "--format", "csv").stdout == first_csv
    assert from_csv("assets", "export", "--format", "json").stdout == first_json

    from_json = Cli(databases.initialised(), tmp_path)
    assert from_json("assets", "import", str(tmp_path / "export.json")).returncode == 0
    assert from_json("assets", "export", "--format", "json").stdout == first_json


def test_list_as_a_table_and_as_json(cli):
    empty = cli("assets", "list", "--format", "table")
    assert empty.returncode == 0 and "(0 assets)" in empty.stdout
    cli.seed(RICH_CSV)
    table = cli("assets", "list", "--format", "table")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ADDRESSES", "KIND"]
    assert any(
        row.startswith("PACS radiologie") and "192.168.10.5" in row and "pacs" in row
        for row in rows
    )
    assert rows[-1] == "(2 assets)"
    records = cli.assets()
    assert {r["name"] for r in records} == {"PACS radiologie", "Échographe"}
    assert all(isinstance(r["id"], int) for r in records)
    searched = json.loads(
        cli("assets", "list", "--format", "json", "--search", "radiologie").stdout
    )
    assert [r["name"] for r in searched] == ["PACS radiologie"]


# --- serve ----------------------------------------------------------------------------------


def test_serve_before_init_says_to_run_init(empty_cli):
    result = empty_cli("serve", "--port", "1")
    assert result.returncode == 1
    assert "run `inventory init`" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def test_serve_answers_on_loopback(cli):
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}
    environ["INVENTORY_DATABASE_URL"] = cli.url
    server = subprocess.Popen(
        [INVENTORY, "serve", "--port", str(port), "--no-scheduler"],
        cwd=cli.cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _, body = _get(port, "/healthz")
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, headers, body = _get(port, "/login")
        assert status == 200 and "<form" in body
        assert "HttpOnly" in headers.get("Set-Cookie", "")
        status, headers, _ = _get(port, "/assets")
        assert status == 302 and "/login" in headers["Location"]
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in out
    assert "Traceback" not in err
