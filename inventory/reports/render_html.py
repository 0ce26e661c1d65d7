"""The report as one self-contained HTML page (and the markup the PDF is made from).

Jinja2 with autoescaping on: every value from the inventory (asset names, owners, reasons) is
text, never markup. Styles are inline, the chart is inline SVG; there is no script and nothing
is fetched from elsewhere, so the file reads the same offline, attached to a mail, or in ten
years' archive.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from inventory.reports.chart import trend_svg
from inventory.reports.view import build_view
from inventory.reports.words import Words, report_title, scope_text, summary, words_for

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Above this many findings still there, the PDF appendix groups each asset's findings by check
# (one line per check, with its ports) instead of a line each: WeasyPrint lays out about five
# hundred lines a second, and a 100,000-finding appendix would take minutes.
PDF_COMPACT_ABOVE = 3000


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=False,
        lstrip_blocks=False,
    )


def render_markup(
    snapshot: Mapping[str, Any], *, pdf: bool, report_id: int | None = None, sha256: str = ""
) -> str:
    w: Words = words_for(snapshot)
    view = build_view(snapshot, w)
    env = _environment().overlay()
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: w.t.gettext(message),
        lambda singular, plural, n: w.t.ngettext(singular, plural, n),
        newstyle=True,
    )
    template = env.get_template("report.html")
    active = sum(len(v) for v in view.by_asset.values())
    return template.render(
        snapshot=snapshot,
        view=view,
        w=w,
        pdf=pdf,
        compact=pdf and active > PDF_COMPACT_ABOVE,
        title=report_title(snapshot, w),
        scope=scope_text(snapshot, w),
        summary=summary(snapshot, w),
        coverage=view.coverage,
        chart=trend_svg(
            snapshot["trend"],
            day=w.day,
            label=lambda s: w.label("severity", s),
            title=w.gettext("Open findings by severity at each report"),
        ),
        report_id=report_id,
        sha256=sha256,
    )


def render_html(
    snapshot: Mapping[str, Any], *, report_id: int | None = None, sha256: str = ""
) -> bytes:
    return render_markup(snapshot, pdf=False, report_id=report_id, sha256=sha256).encode()
