"""`inventory report`: write a re-audit report now, list past ones, export one again, run a
schedule. Registered on the main group by inventory/cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from inventory.cli import Context, _actor, _fail, _table, pass_context
from inventory.errors import InventoryError

FORMATS = ["html", "pdf", "csv", "json"]


def _write(content: bytes, output: str) -> None:
    if output == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.group()
def report() -> None:
    """Re-audit reports."""


@report.command("generate")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--output", required=True, help="File to write ('-': standard output).")
@click.option(
    "--scope",
    default="all",
    show_default=True,
    help="all, or site:NAME, zone:NAME, kind:KIND, tag:TAG.",
)
@click.option(
    "--schedule",
    "schedule_name",
    help="Make this report one of that schedule's (its scope, language and baseline); "
    "nothing is sent.",
)
@click.option("--language", type=click.Choice(["en", "fr"]), help="Default: [reports] language.")
@pass_context
def report_generate(
    ctx: Context,
    fmt: str,
    output: str,
    scope: str,
    schedule_name: str | None,
    language: str | None,
) -> None:
    """Write a re-audit report now. It is kept (Reports page, `report list`); the next one of
    the same schedule, or of the same scope, is compared with it."""
    from inventory.models.types import utcnow
    from inventory.services import reports as report_service
    from inventory.services.report_schedules import find_schedule

    with ctx.session() as session:
        try:
            schedule = None
            if schedule_name:
                schedule = find_schedule(session=session, name=schedule_name)
                if schedule is None:
                    raise click.ClickException(f"no report schedule called {schedule_name}")
            made = report_service.generate_report(
                session=session,
                settings=ctx.settings,
                now=utcnow(),
                trigger="cli",
                actor=_actor(),
                schedule=schedule,
                scope=None if schedule else report_service.parse_scope(scope),
                language=language,
                formats=[fmt],
            )
            content = report_service.render_report(session=session, report=made, fmt=fmt)
        except InventoryError as exc:
            _fail(exc)
            return
    _write(content, output)
    if output != "-":
        totals = made.totals
        click.echo(
            f"report {made.id} written to {output}: {totals['assets']} assets, "
            f"{totals['open']} open findings, {totals['overdue']} overdue for audit",
            err=True,
        )


@report.command("export")
@click.argument("report_id", type=int)
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--output", required=True, help="File to write ('-': standard output).")
@pass_context
def report_export(ctx: Context, report_id: int, fmt: str, output: str) -> None:
    """Write a stored report again, in any format: the same content as on its date."""
    from inventory.services import reports as report_service

    with ctx.session() as session:
        try:
            made = report_service.get_report(session=session, report_id=report_id)
            content = report_service.render_report(session=session, report=made, fmt=fmt)
        except InventoryError as exc:
            _fail(exc)
            return
    _write(content, output)


@report.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_context
def report_list(ctx: Context, fmt: str) -> None:
    """List past reports, newest first."""
    from inventory.services import reports as report_service

    with ctx.session() as session:
        rows = report_service.list_reports(session=session)
        names = report_service.schedule_names(
            session=session, ids=sorted({r.schedule_id for r in rows if r.schedule_id})
        )
    records = [
        {
            "id": r.id,
            "generated_at": r.generated_at.isoformat(timespec="seconds"),
            "schedule": names.get(r.schedule_id or 0),
            "scope": r.scope if not r.scope_value else f"{r.scope}:{r.scope_value}",
            "trigger": r.trigger,
            "assets": r.totals.get("assets"),
            "open": r.totals.get("open"),
            "overdue": r.totals.get("overdue"),
            "sha256": r.sha256,
        }
        for r in rows
    ]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    _table(records, ["id", "generated_at", "schedule", "scope", "assets", "open", "overdue"])
    click.echo(f"({len(records)} reports)")


@report.command("run")
@click.argument("name")
@pass_context
def report_run(ctx: Context, name: str) -> None:
    """Run a report schedule now: generate its report and send it to its recipients."""
    from inventory.models.types import utcnow
    from inventory.services.report_deliveries import list_deliveries, run_schedule
    from inventory.services.report_schedules import find_schedule

    with ctx.session() as session:
        schedule = find_schedule(session=session, name=name)
        if schedule is None:
            raise click.ClickException(f"no report schedule called {name}")
        made = run_schedule(
            session=session,
            settings=ctx.settings,
            schedule=schedule,
            now=utcnow(),
            trigger="cli",
            actor=_actor(),
        )
        deliveries = list_deliveries(session=session, report_id=made.id or 0)
    click.echo(f"report {made.id}: {made.totals['open']} open findings")
    failed = False
    for d in deliveries:
        click.echo(
            f"  {d.channel} {d.target}: {d.status}{' - ' + d.last_error if d.last_error else ''}"
        )
        failed = failed or d.status != "sent"
    if failed:
        sys.exit(1)
