"""`inventory feeds`: import vulnerability feed files, download them (optional), show their state.

A module of its own, registered in inventory/cli.py with `main.add_command(feeds)`. It reuses
that module's context (settings and engine built on first use) and error reporting; they are
imported inside the commands, so that the two modules do not import each other at load time.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from inventory.errors import InventoryError

if TYPE_CHECKING:
    from inventory.cli import Context


def _context(click_ctx: click.Context) -> Context:
    from inventory.cli import Context

    return click_ctx.ensure_object(Context)


def _actor() -> str:
    from inventory.cli import _actor as cli_actor

    return cli_actor()


def _fail(exc: InventoryError) -> None:
    from inventory.cli import _fail as cli_fail

    cli_fail(exc)


def _report(results: list[Any], rematched: Any) -> None:
    names = {"nvd": "NVD CVE records", "kev": "CISA KEV catalog"}
    for r in results:
        date = f", feed of {r.feed_date:%Y-%m-%d %H:%M} UTC" if r.feed_date else ""
        click.echo(
            f"{r.filename}: {names[r.feed]}{date}: {r.records} records "
            f"({r.created} new, {r.updated} updated, {r.unchanged} unchanged)"
        )
        if r.older:
            click.echo(f"{r.filename}: older than the catalog already imported; nothing changed")
    _rematched(rematched)


def _rematched(result: Any) -> None:
    click.echo(
        f"Re-matched {result.assets} assets: {result.opened} new findings, "
        f"{result.reopened} reopened, {result.fixed} fixed."
    )


@click.group()
def feeds() -> None:
    """Vulnerability feeds: NVD CVE records and the CISA KEV catalog."""


@feeds.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.pass_context
def feeds_import(click_ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Import NVD API 2.0 JSON and CISA KEV JSON files (gzip too), all or nothing, then re-match
    every asset."""
    from inventory.services import vulns

    ctx = _context(click_ctx)
    with ctx.session() as session:
        try:
            results, rematched = vulns.import_and_rematch(
                session=session,
                files=[(path, path.name) for path in files],
                actor=_actor(),
                options=vulns.options_from(ctx.settings),
            )
        except InventoryError as exc:
            _fail(exc)
            return
    _report(results, rematched)


@feeds.command("update")
@click.option("--api-key", default=None, help="NVD API key (default: [vulns] nvd_api_key).")
@click.option("--full", is_flag=True, help="Download the whole NVD, not only what changed.")
@click.option("--nvd-url", default=None, help="NVD API 2.0 CVE endpoint (default: [vulns]).")
@click.option("--kev-url", default=None, help="KEV catalog URL (default: [vulns]).")
@click.option("--no-kev", is_flag=True, help="Do not download the KEV catalog.")
@click.option("--no-nvd", is_flag=True, help="Do not download NVD records.")
@click.option(
    "--delay",
    type=click.FloatRange(0, 600),
    default=None,
    help="Seconds between NVD requests (default: [vulns], from the rate limit).",
)
@click.pass_context
def feeds_update(
    click_ctx: click.Context,
    api_key: str | None,
    full: bool,
    nvd_url: str | None,
    kev_url: str | None,
    no_kev: bool,
    no_nvd: bool,
    delay: float | None,
) -> None:
    """Download the feeds (needs Internet access) and import them; since the last update only."""
    from inventory.services import vulns
    from inventory.vulns.fetch import FetchPlan, fetch_feeds

    ctx = _context(click_ctx)
    config = ctx.settings.vulns
    key = config.nvd_api_key.get_secret_value() if api_key is None else api_key
    with ctx.session() as session:
        since = None if full else vulns.last_api_update(session=session)
        plan = FetchPlan(
            nvd_url=nvd_url or config.nvd_url,
            kev_url=kev_url or config.kev_url,
            api_key=key,
            since=since,
            page_size=config.nvd_page_size,
            delay=delay
            if delay is not None
            else (config.nvd_delay_with_key if key else config.nvd_delay_without_key),
            retries=config.download_retries,
            timeout=config.download_timeout,
            nvd=not no_nvd,
            kev=not no_kev,
        )
        what = f"changed since {since:%Y-%m-%d %H:%M} UTC" if since else "all records"
        if plan.nvd:
            click.echo(f"Downloading NVD records ({what})...", err=True)
        try:
            with tempfile.TemporaryDirectory(prefix="vigie-feeds-") as folder:
                files = fetch_feeds(Path(folder), plan)
                results, rematched = vulns.import_and_rematch(
                    session=session,
                    files=[(path, path.name) for path in files],
                    actor=_actor(),
                    source="api",
                    options=vulns.options_from(ctx.settings),
                )
        except InventoryError as exc:
            _fail(exc)
            return
    _report(results, rematched)


@feeds.command("status")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def feeds_status(click_ctx: click.Context, fmt: str) -> None:
    """Each feed's records, its own date and its last import."""
    from inventory.services import vulns

    with _context(click_ctx).session() as session:
        rows = [
            {
                "feed": s.feed,
                "records": s.records,
                "feed_date": s.feed_date.isoformat(timespec="seconds") if s.feed_date else None,
                "last_import": s.last_import.finished_at.isoformat(timespec="seconds")
                if s.last_import
                else None,
                "last_file": s.last_import.filename if s.last_import else None,
            }
            for s in vulns.feed_status(session=session)
        ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['feed']}: {row['records']} records, feed date {row['feed_date'] or '—'}, "
            f"last import {row['last_import'] or 'never'} ({row['last_file'] or '—'})"
        )


@feeds.command("rematch")
@click.pass_context
def feeds_rematch(click_ctx: click.Context) -> None:
    """Match every asset against every record again (after changing [vulns] settings); feed
    imports, audits and edits already match what they change."""
    from inventory.services import vulns

    ctx = _context(click_ctx)
    with ctx.session() as session:
        result = vulns.rematch(
            session=session, options=vulns.options_from(ctx.settings), actor=_actor()
        )
    _rematched(result)
