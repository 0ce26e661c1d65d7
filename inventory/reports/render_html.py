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
from jinja2.ext import _make_new_gettext, _make_new_ngettext

from inventory.reports.chart import trend_svg
from inventory.reports.rows import Rows
from inventory.reports.view import build_view
from inventory.reports.words import Words, report_title, scope_text, summary, words_for

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Above this many findings still there, the PDF counts the changes and accepted risks by check
# and gives one plain line per asset in its appendix (every asset, its findings counted by
# severity): WeasyPrint lays out a few hundred lines a second, and a line per finding of a
# 100,000-finding inventory would take many minutes and gigabytes. The HTML and CSV list each.
PDF_COMPACT_ABOVE = 3000


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    """One environment, its template compiled once; each report brings its own gettext (the
    report's language, not the process's) as render variables, which win over these globals."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return env


def render_markup(
    snapshot: Mapping[str, Any], *, pdf: bool, report_id: int | None = None, sha256: str = ""
) -> str:
    w: Words = words_for(snapshot)
    view = build_view(snapshot, w)
    template = _environment().get_template("report.html")
    active = sum(len(v) for v in view.by_asset.values())
    return template.render(
        gettext=_make_new_gettext(w.t.gettext),
        ngettext=_make_new_ngettext(w.t.ngettext),
        snapshot=snapshot,
        view=view,
        rows=Rows(w, view.assets),
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
