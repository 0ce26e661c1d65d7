"""The report as a PDF: the HTML report's markup with print styles (A4, running title, page
numbers, fix-first items referring to their asset's page in the appendix), laid out by
WeasyPrint. Nothing is fetched: the markup has no external resource and the URL fetcher
refuses any anyway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inventory.reports.render_html import render_markup


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
    raise ValueError(f"reports load nothing from elsewhere ({url[:60]})")


def render_pdf(
    snapshot: Mapping[str, Any], *, report_id: int | None = None, sha256: str = ""
) -> bytes:
    from weasyprint import HTML

    markup = render_markup(snapshot, pdf=True, report_id=report_id, sha256=sha256)
    document = HTML(string=markup, url_fetcher=_no_fetch, base_url=".").render()
    return document.write_pdf() or b""
