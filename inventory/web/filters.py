"""Template helpers: dates in the user's time zone, intervals, labels for enum values."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request, url_for
from flask_babel import format_date, format_datetime, get_locale, gettext

from inventory.audit import checks
from inventory.validators import format_interval
from inventory.web import labels
from inventory.web.helpers import translate


def _when(value: datetime | None) -> str:
    return format_datetime(value, "short") if value else ""


def _day(value: datetime | None) -> str:
    return format_date(value, "medium") if value else ""


def _evidence_summary(evidence: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Counts only: numbers, yes/no and the size of lists; never the text a peer sent."""
    summary = []
    for key, value in sorted((evidence or {}).items()):
        if isinstance(value, bool):
            summary.append((key, "✓" if value else "✗"))
        elif isinstance(value, (int, float)):
            summary.append((key, str(value)))
        elif isinstance(value, (list, tuple, dict, set)):
            summary.append((key, str(len(value))))
    return summary


def _finding_title(finding: Any) -> str:
    """The finding's title in the reader's language (see inventory.audit.checks)."""
    return checks.finding_title(
        finding.check_id,
        port=finding.port,
        address=finding.address,
        evidence=finding.evidence,
        stored=finding.title,
        translate=gettext,
    )


def _finding_remediation(finding: Any) -> str:
    return checks.remediation(finding.remediation, gettext)


def _url_with(**changes: Any) -> str:
    """The current list URL with some query arguments changed (sort, page, filters)."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value in (None, ""):
            args.pop(key, None)
        else:
            args[key] = value
    # The query string is encoded here, not passed to url_for: there, visitor-chosen names such
    # as `endpoint`, `_method` or `_scheme` are url_for's own arguments (a crash, or a new scheme).
    path = url_for(request.endpoint or "index", **(request.view_args or {}))
    return f"{path}?{urlencode(args)}" if args else path


def register(app: Flask) -> None:
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["interval"] = format_interval
    app.jinja_env.filters["day"] = _day
    app.jinja_env.globals["evidence_summary"] = _evidence_summary
    app.jinja_env.globals["finding_title"] = _finding_title
    app.jinja_env.globals["finding_remediation"] = _finding_remediation
    app.jinja_env.globals["url_with"] = _url_with
    app.jinja_env.globals["label"] = labels.label
    app.jinja_env.globals["choices"] = labels.choices
    app.jinja_env.globals["translate"] = translate
    app.jinja_env.globals["get_locale"] = get_locale
