"""The `inventory` command (PRODUCT.md contract): thin click commands over the services.

Output for people goes to stdout as text; `--format json` is for machines. Problems go to stderr
with exit status 1; usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlmodel import Session

from inventory.errors import ConfigError, ImportRejected, InvalidInput, InventoryError
from inventory.i18n import render
from inventory.models import Role
from inventory.settings import Settings, load_settings


class Context:
    """Settings and engine, built on first use so `--help` works without a database."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from inventory.db import engine_from_settings

            self._engine = engine_from_settings(self.settings)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        from inventory.db import session_scope

        self.require_schema()
        with session_scope(self.engine) as session:
            yield session

    def require_schema(self) -> None:
        from inventory.db import schema_is_current

        try:
            current = schema_is_current(self.engine)
        except Exception as exc:  # noqa: BLE001 - any driver error means "cannot reach it"
            raise click.ClickException(
                f"cannot open the database: {exc.__class__.__name__}: {exc}"
            ) from exc
        if not current:
            raise click.ClickException(
                "the database schema is missing or out of date: run `inventory init` first"
            )


pass_context = click.make_pass_decorator(Context, ensure=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    """Message parameters without the ones meant for links (the web shows those)."""
    return {k: v for k, v in params.items() if k != "asset_id"}


def _fail(exc: InventoryError) -> None:
    click.echo(f"error: {render(exc.message, exc.params) if exc.message else exc}", err=True)
    if isinstance(exc, InvalidInput):
        for name, messages in exc.fields.items():
            for message, params in messages:
                click.echo(
                    f"  {name}: {render(message, _shown(params))}",
                    err=True,
                )
    sys.exit(1)


@click.group()
@click.version_option(package_name="vigie-inventory")
def main() -> None:
    """Vigie: inventory and re-audit of a healthcare organisation's IT systems."""


# --- init and serve -------------------------------------------------------------------------


@main.command()
@pass_context
def init(ctx: Context) -> None:
    """Create or upgrade the database schema; create the first admin if there is no account."""
    from inventory.db import session_scope, upgrade_schema
    from inventory.services.users import LoginPolicy, ensure_first_admin

    try:
        upgrade_schema(ctx.engine)
    except Exception as exc:  # noqa: BLE001
        raise click.ClickException(
            f"cannot create the schema: {exc.__class__.__name__}: {exc}"
        ) from exc
    click.echo(f"Database ready: {ctx.engine.url.render_as_string(hide_password=True)}")
    password = os.environ.get("INVENTORY_ADMIN_PASSWORD") or None
    policy = LoginPolicy(min_password_length=ctx.settings.auth.min_password_length)
    with session_scope(ctx.engine) as session:
        try:
            created = ensure_first_admin(session=session, password=password, policy=policy)
        except InvalidInput as exc:
            _fail(exc)
            return
    if created is None:
        return
    user, generated = created
    web = ctx.settings.web
    click.echo("")
    click.echo(f"First administrator created. Log in at http://{web.host}:{web.port}/ with")
    click.echo(f"  user name: {user.username}")
    if generated:
        click.echo(f"  password:  {generated}")
        click.echo(
            "This password is shown only once: write it down, then change it on your account page."
        )
    else:
        click.echo("  password:  the one in INVENTORY_ADMIN_PASSWORD")


@main.command()
@click.option("--host", help="Address to listen on (default from config: 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default from config: 8080).")
@click.option(
    "--no-scheduler", is_flag=True, help="Serve the UI only; run `inventory scheduler` elsewhere."
)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True)
@pass_context
def serve(
    ctx: Context, host: str | None, port: int | None, no_scheduler: bool, threads: int
) -> None:
    """Serve the web UI and API, with the scheduler in the same process unless --no-scheduler."""
    from waitress import serve as waitress_serve

    from inventory import create_app

    ctx.require_schema()
    host = host or ctx.settings.web.host
    port = port or ctx.settings.web.port
    app = create_app(settings=ctx.settings, engine=ctx.engine)
    if host not in {"127.0.0.1", "::1", "localhost"}:
        click.echo(
            f"warning: listening on {host}: make sure only trusted networks can reach it", err=True
        )
    click.echo(f"Vigie is serving on http://{host}:{port}/ (Ctrl+C to stop)")
    if no_scheduler:
        _on_sigterm(lambda: _raise(KeyboardInterrupt()))
        waitress_serve(app, host=host, port=port, threads=threads, ident="Vigie", _quiet=True)
        return
    import threading

    from inventory.scheduler.service import SchedulerService

    _logging()
    stop = threading.Event()
    service = SchedulerService(ctx.engine, ctx.settings)
    thread = service.start_in_thread(stop)
    # SIGTERM stops the web server like Ctrl+C does; then the scheduler shuts down cleanly.
    _on_sigterm(lambda: _raise(KeyboardInterrupt()))
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="Vigie", _quiet=True)
    finally:
        stop.set()
        thread.join(ctx.settings.scheduler.shutdown_grace + 40)


def _raise(exc: BaseException) -> None:
    raise exc


def _on_sigterm(action: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda _signum, _frame: action())


def _logging() -> None:
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per dispatcher run


# --- scheduling -----------------------------------------------------------------------------


@main.command()
@click.option(
    "--no-worker",
    is_flag=True,
    help="Only hand out due audits; `inventory worker` processes run them (PostgreSQL).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    help="Audits the in-process worker runs at once (default from config).",
)
@click.option("--id", "holder_id", help="Name of this scheduler (default: host and process id).")
@pass_context
def scheduler(
    ctx: Context, no_worker: bool, concurrency: int | None, holder_id: str | None
) -> None:
    """Run the scheduler: re-audits every asset when due. One is active per database; another
    one started waits as a standby and takes over if the active one stops."""
    import threading

    from inventory.scheduler.service import SchedulerService

    ctx.require_schema()
    _logging()
    stop = threading.Event()
    _on_sigterm(stop.set)
    service = SchedulerService(
        ctx.engine,
        ctx.settings,
        holder_id=holder_id,
        with_worker=False if no_worker else None,
        concurrency=concurrency,
    )
    try:
        service.run(stop)
    except KeyboardInterrupt:
        stop.set()


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    help="Audits run at once by this worker (default from config).",
)
@click.option(
    "--once", is_flag=True, help="Exit when no audit is waiting (instead of waiting for more)."
)
@click.option(
    "--id",
    "worker_id",
    help="A stable name for this worker (e.g. site-a-1): on restart, what it was auditing "
    "when it stopped is marked interrupted at once.",
)
@pass_context
def worker(ctx: Context, concurrency: int | None, once: bool, worker_id: str | None) -> None:
    """Run audits that the scheduler hands out; start any number, on any machine (PostgreSQL)."""
    import asyncio
    import signal

    from inventory.scheduler.worker import Worker

    ctx.require_schema()
    _logging()
    if ctx.engine.dialect.name == "sqlite" and not once:
        click.echo(
            "note: with SQLite, `inventory serve` or `inventory scheduler` already run audits; "
            "extra workers help only with PostgreSQL",
            err=True,
        )
    audit_worker = Worker(
        ctx.engine, ctx.settings, worker_id=worker_id, concurrency=concurrency, once=once
    )

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await audit_worker.run(stop)

    asyncio.run(main_loop())
    click.echo(f"worker {audit_worker.id}: {audit_worker.audited} audit(s) recorded", err=True)


# --- users ----------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage accounts."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@pass_context
def users_add(ctx: Context, name: str, role: str) -> None:
    """Add an account; the password is read from standard input, or generated and printed once."""
    from inventory.services.users import LoginPolicy, create_user

    password = None
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n") or None
    policy = LoginPolicy(min_password_length=ctx.settings.auth.min_password_length)
    with ctx.session() as session:
        try:
            user, generated = create_user(
                session=session, username=name, role=Role(role), password=password, policy=policy
            )
        except InvalidInput as exc:
            _fail(exc)
            return
    click.echo(f"Account {user.username} ({user.role}) created.")
    if generated:
        click.echo(f"password: {generated}")
        click.echo("This password is shown only once.")


@users.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_context
def users_list(ctx: Context, fmt: str) -> None:
    """List accounts."""
    from inventory.services.users import list_users

    with ctx.session() as session:
        rows = [
            {
                "username": u.username,
                "role": str(u.role),
                "active": u.active,
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in list_users(session=session)
        ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["username", "role", "active", "last_login_at"])


# --- API tokens -----------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Manage API tokens (for scripts using /api/v1)."""


@tokens.command("create")
@click.option(
    "--user", "username", required=True, help="Account the token acts for (and with its role)."
)
@click.option("--name", required=True, help="What the token is for, e.g. 'nightly export'.")
@pass_context
def tokens_create(ctx: Context, username: str, name: str) -> None:
    """Create a token; the secret is printed once."""
    from inventory.services.tokens import create_token
    from inventory.services.users import find_user

    with ctx.session() as session:
        user = find_user(session=session, username=username)
        if user is None:
            raise click.ClickException(f"no account called {username}")
        try:
            token, secret = create_token(session=session, user_id=user.id, name=name)  # type: ignore[arg-type]
        except InvalidInput as exc:
            _fail(exc)
            return
    click.echo(f"Token {token.id} ({token.name}) for {user.username}, role {user.role}:")
    click.echo(secret)
    click.echo("This secret is shown only once. Use it as: Authorization: Bearer <secret>")


@tokens.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_context
def tokens_list(ctx: Context, fmt: str) -> None:
    """List tokens (never their secrets)."""
    from sqlalchemy import select

    from inventory.models import User
    from inventory.services.tokens import list_tokens

    with ctx.session() as session:
        names = {u.id: u.username for u in session.scalars(select(User))}
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "user": names.get(t.user_id, "?"),
                "prefix": t.prefix,
                "created_at": t.created_at.isoformat(timespec="seconds"),
                "last_used_at": t.last_used_at.isoformat(timespec="seconds")
                if t.last_used_at
                else None,
                "revoked": t.revoked_at is not None,
            }
            for t in list_tokens(session=session)
        ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["id", "name", "user", "prefix", "created_at", "last_used_at", "revoked"])


@tokens.command("revoke")
@click.argument("token_id", type=int)
@pass_context
def tokens_revoke(ctx: Context, token_id: int) -> None:
    """Revoke a token at once."""
    from inventory.errors import NotFound
    from inventory.services.tokens import revoke_token

    with ctx.session() as session:
        try:
            revoke_token(session=session, token_id=token_id)
        except NotFound as exc:
            _fail(exc)
    click.echo(f"Token {token_id} revoked.")


# --- assets ---------------------------------------------------------------------------------


@main.group()
def assets() -> None:
    """Import, export and list assets."""


@assets.command("import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path, allow_dash=True)
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), help="Default: from the file name."
)
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@pass_context
def assets_import(ctx: Context, file: Path, fmt: str | None, dry_run: bool) -> None:
    """Import assets from CSV or JSON; nothing is written if any row is bad."""
    from inventory.models.types import utcnow
    from inventory.services import transfer, vulns

    content = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    fmt = fmt or transfer.guess_format(str(file), content)
    with ctx.session() as session:
        try:
            plan = transfer.plan_import(session=session, content=content, fmt=fmt)
            if plan.problems:
                raise ImportRejected(plan.problems)
            if dry_run:
                click.echo(
                    f"{file}: {len(plan.rows)} rows are valid ({plan.creates} new, "
                    f"{plan.updates} updates); nothing was written (--dry-run)."
                )
                return
            started = utcnow()
            result = transfer.apply_import(session=session, plan=plan, actor=_actor(), source="cli")
            vulns.rematch_edited(
                session=session,
                since=started,
                options=vulns.options_from(ctx.settings),
                actor=_actor(),
            )
        except ImportRejected as exc:
            for problem in exc.rows:
                where = f"line {problem.line}" + (f", {problem.field}" if problem.field else "")
                params = {k: v for k, v in problem.params.items() if k != "asset_id"}
                click.echo(f"{file}: {where}: {render(problem.message, params)}", err=True)
            click.echo(f"{file}: {len(exc.rows)} problem(s); nothing was imported.", err=True)
            sys.exit(1)
        except InvalidInput as exc:
            _fail(exc)
    click.echo(
        f"{file}: {result.created} added, {result.updated} updated, {result.unchanged} unchanged."
    )


@assets.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
@pass_context
def assets_export(ctx: Context, fmt: str, output: Path | None) -> None:
    """Write every live asset; importing the result gives the same inventory."""
    from inventory.services import transfer
    from inventory.services.assets import live_assets

    with ctx.session() as session:
        chunks = transfer.export_csv if fmt == "csv" else transfer.export_json
        if output is None:
            out = sys.stdout  # click.get_text_stream is deprecated (Click 8.5) and untyped
            for chunk in chunks(live_assets(session=session)):
                out.write(chunk)
            out.flush()
            return
        tmp = output.with_name(output.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            for chunk in chunks(live_assets(session=session)):
                handle.write(chunk)
        tmp.replace(output)
    click.echo(f"wrote {output}", err=True)


@assets.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--search", default="", help="Words to find in name, address, host name or tag.")
@click.option("--kind", default="")
@click.option("--site", default="")
@click.option("--zone", default="")
@click.option("--tag", default="")
@click.option("--archived", is_flag=True, help="List archived assets instead.")
@pass_context
def assets_list(
    ctx: Context, fmt: str, search: str, kind: str, site: str, zone: str, tag: str, archived: bool
) -> None:
    """List assets."""
    from inventory.services.assets import AssetQuery, asset_to_data, data_to_record, list_assets

    query = AssetQuery(
        text=search, kind=kind, site=site, zone=zone, tag=tag, archived=archived, per_page=1000
    )
    records: list[dict[str, Any]] = []
    with ctx.session() as session:
        while True:
            page = list_assets(session=session, query=query)
            records += [{"id": a.id, **data_to_record(asset_to_data(a))} for a in page.items]
            if page.page >= page.pages:
                break
            query.page += 1
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    rows = [
        {**r, "addresses": " ".join(r["addresses"]), "tags": " ".join(r["tags"])} for r in records
    ]
    _table(rows, ["name", "addresses", "kind", "site", "zone", "criticality", "tags"])
    click.echo(f"({len(rows)} assets)")


# --- audits and findings --------------------------------------------------------------------


@main.group()
def audit() -> None:
    """Audit assets now."""


@audit.command("run")
@click.option("--asset", "name", help="Name of the asset to audit.")
@click.option("--all", "all_assets", is_flag=True, help="Audit every asset in the inventory.")
@pass_context
def audit_run(ctx: Context, name: str | None, all_assets: bool) -> None:
    """Audit now, synchronously; exit 0 when the audits ran, whatever they found."""
    from inventory.services.assets import find_live_asset, live_assets
    from inventory.services.audits import audit_asset, audit_assets
    from inventory.services.findings import OPEN_STATUSES, findings_of, observed_services
    from inventory.services.vulns import options_from

    if bool(name) == all_assets:
        raise click.UsageError("give either --asset NAME or --all")
    settings, actor, vulns = ctx.settings.audit, _actor(), options_from(ctx.settings)
    with ctx.session() as session:
        done: Iterable[tuple[int, Any]]
        if name:
            asset = find_live_asset(session=session, name=name)
            if asset is None:
                raise click.ClickException(f"no asset called {name}")
            assert asset.id is not None
            names = {asset.id: asset.name}
            one = audit_asset(
                session=session,
                asset_id=asset.id,
                settings=settings,
                actor=actor,
                trigger="cli",
                vulns=vulns,
            )
            done = [(asset.id, one)]
        else:
            # Every asset in one event loop under shared limits: as long as the slowest few
            # audits, not the sum of all. Each is printed (and stored) as it ends.
            names = {a.id: a.name for a in live_assets(session=session) if a.id is not None}
            done = audit_assets(
                session=session,
                asset_ids=list(names),
                settings=settings,
                actor=actor,
                trigger="cli",
                vulns=vulns,
            )
        targets = list(names)
        for asset_id, audited in done:
            seen = observed_services(session=session, asset_id=asset_id)
            ports = [f"{s.address}:{s.port}" for s in seen]
            active = [
                f
                for f in findings_of(session=session, asset_id=asset_id)
                if f.status in OPEN_STATUSES
            ]
            reachable = str(audited.outcome) == "completed"
            state = "reachable" if reachable else "not reachable (findings left as they were)"
            click.echo(f"{names[asset_id]}: {state} ({audited.duration:.1f} s)")
            if reachable:
                click.echo(f"  open ports: {', '.join(ports) if ports else 'none'}")
            click.echo(f"  open findings: {len(active)}")
            for f in active:
                click.echo(f"    [{f.severity}] {f.check_id} {f.subject}: {f.title}")
            failed = [p for p in audited.probes if p.get("outcome") == "failed"]
            for p in failed:
                click.echo(f"  probe {p['probe']} failed: {p.get('reason', '')}")
        if not targets:
            click.echo("no asset to audit")


FINDING_COLUMNS = [
    "asset",
    "address",
    "port",
    "check",
    "severity",
    "status",
    "title",
    "first_seen",
    "last_seen",
    "accepted_until",
]


@main.group()
def findings() -> None:
    """List findings."""


@findings.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "fixed", "reopened", "accepted"]),
    help="open also lists reopened findings.",
)
@click.option("--severity", type=click.Choice(["info", "low", "medium", "high", "critical"]))
@click.option("--check", "check_id", default="", help="A check id, e.g. dicom.open-association.")
@click.option("--site", default="")
@click.option("--zone", default="")
@click.option("--kind", default="")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@pass_context
def findings_list(
    ctx: Context,
    status: str | None,
    severity: str | None,
    check_id: str,
    site: str,
    zone: str,
    kind: str,
    fmt: str,
) -> None:
    """List findings, most urgent first (severity, patient data, exposure, age)."""
    import csv

    from inventory.services.findings import FindingQuery, expire_acceptances, list_findings
    from inventory.services.vuln_findings import vulnerabilities_of

    query = FindingQuery(
        status=status or "",
        severity=severity or "",
        check=check_id,
        site=site,
        zone=zone,
        kind=kind,
    )
    with ctx.session() as session:
        expire_acceptances(session=session)
        rows = list_findings(session=session, query=query)
        vulnerabilities = vulnerabilities_of(session=session, findings=[f for f, _ in rows])
        records = [
            {
                "asset": a.name,
                "address": f.address,
                "port": f.port,
                "check": f.check_id,
                "severity": str(f.severity),
                "status": str(f.status),
                "title": f.title,
                "first_seen": f.first_seen.isoformat(timespec="seconds"),
                "last_seen": f.last_seen.isoformat(timespec="seconds"),
                "accepted_until": f.accepted_until.isoformat(timespec="seconds")
                if f.status == "accepted" and f.accepted_until
                else None,
                **({"vulnerability": vulnerabilities[f.id]} if f.id in vulnerabilities else {}),
            }
            for f, a in rows
        ]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=FINDING_COLUMNS, lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(records)
        sys.stdout.flush()
        return
    _table(records, ["asset", "address", "port", "check", "severity", "status", "title"])
    click.echo(f"({len(records)} findings)")


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {
        c: max([len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows)])
        for c in columns
    }
    widths = {c: min(w, 48) for c, w in widths.items()}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        cells = []
        for c in columns:
            value = "" if row.get(c) is None else str(row.get(c))
            cells.append(
                (value if len(value) <= widths[c] else value[: widths[c] - 1] + "…").ljust(
                    widths[c]
                )
            )
        click.echo("  ".join(cells).rstrip())


def _add_command_groups() -> None:
    """Command groups kept in modules of their own (they import this one)."""
    from inventory.cli_feeds import feeds
    from inventory.cli_reports import report

    main.add_command(report)
    main.add_command(feeds)


_add_command_groups()

if __name__ == "__main__":
    main()
