"""`inventory feeds`: import vulnerability feed files, download them (optional), show their state.

A separate module so that the command group can grow without touching inventory/cli.py; it is
registered there with `main.add_command(feeds)`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlmodel import Session

from inventory.errors import ConfigError, InventoryError
from inventory.i18n import render
from inventory.settings import Settings, load_settings


class FeedsContext:
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
        from inventory.db import schema_is_current, session_scope

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
        with session_scope(self.engine) as session:
            yield session


pass_feeds = click.make_pass_decorator(FeedsContext, ensure=True)


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _fail(exc: InventoryError) -> None:
    click.echo(f"error: {render(exc.message, exc.params) if exc.message else exc}", err=True)
    sys.exit(1)


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
    click.echo(
        f"Re-matched {rematched.assets} assets: {rematched.opened} new findings, "
        f"{rematched.reopened} reopened, {rematched.fixed} fixed."
    )


@click.group()
def feeds() -> None:
    """Vulnerability feeds: NVD CVE records and the CISA KEV catalog."""


@feeds.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@pass_feeds
def feeds_import(ctx: FeedsContext, files: tuple[Path, ...]) -> None:
    """Import NVD API 2.0 JSON and CISA KEV JSON files (gzip too), all or nothing, then re-match
    every asset."""
    from inventory.services import vulns

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
@click.option("--api-key", envvar="NVD_API_KEY", default="", help="NVD API key (or NVD_API_KEY).")
@click.option("--full", is_flag=True, help="Download the whole NVD, not only what changed.")
@click.option("--nvd-url", default=None, help="NVD API 2.0 CVE endpoint (a mirror).")
@click.option("--kev-url", default=None, help="KEV catalog URL (a mirror).")
@click.option("--no-kev", is_flag=True, help="Do not download the KEV catalog.")
@click.option("--no-nvd", is_flag=True, help="Do not download NVD records.")
@click.option(
    "--delay", type=click.FloatRange(0, 60), default=None, help="Seconds between NVD requests."
)
@pass_feeds
def feeds_update(
    ctx: FeedsContext,
    api_key: str,
    full: bool,
    nvd_url: str | None,
    kev_url: str | None,
    no_kev: bool,
    no_nvd: bool,
    delay: float | None,
) -> None:
    """Download the feeds (needs Internet access) and import them; since the last update only."""
    from inventory.services import vulns
    from inventory.vulns.fetch import KEV_URL, NVD_URL, FetchPlan, fetch_feeds

    with ctx.session() as session:
        since = None if full else vulns.last_api_update(session=session)
        plan = FetchPlan(
            nvd_url=nvd_url or NVD_URL,
            kev_url=kev_url or KEV_URL,
            api_key=api_key,
            since=since,
            delay=delay,
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
@pass_feeds
def feeds_status(ctx: FeedsContext, fmt: str) -> None:
    """Each feed's records, its own date and its last import."""
    from inventory.services import vulns

    with ctx.session() as session:
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
