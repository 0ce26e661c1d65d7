"""The words of a report, in its own language (the schedule's, not the reader's browser's):
gettext from Vigie's catalogue without Flask, labels for stored values, dates in the configured
time zone, and the plain-words summary that opens every format and every e-mail."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from inventory.audit import checks
from inventory.i18n import N_
from inventory.reports.data import parse_iso

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"

LABELS: dict[str, dict[str, str]] = {
    "severity": {
        "critical": N_("Critical"),
        "high": N_("High"),
        "medium": N_("Medium"),
        "low": N_("Low"),
        "info": N_("Info"),
    },
    "status": {
        "open": N_("Open"),
        "reopened": N_("Reopened"),
        "accepted": N_("Accepted risk"),
        "fixed": N_("Fixed"),
    },
    "kind": {
        "pacs": N_("PACS (image archive)"),
        "modality": N_("Modality (scanner, X-ray, ultrasound...)"),
        "viewer-workstation": N_("Viewing workstation"),
        "web-viewer": N_("Web viewer"),
        "nas": N_("NAS (network storage)"),
        "database": N_("Database"),
        "server": N_("Server"),
        "network-device": N_("Network device"),
        "workstation": N_("Workstation"),
        "other": N_("Other"),
    },
    "criticality": {
        "low": N_("Low"),
        "medium": N_("Medium"),
        "high": N_("High"),
        "critical": N_("Critical"),
    },
    "exposure": {
        "internal": N_("Internal network only"),
        "vpn": N_("Through the VPN"),
        "public": N_("Public (Internet)"),
    },
    "outcome": {
        "completed": N_("Completed"),
        "unreachable": N_("No answer"),
        "failed": N_("Failed"),
        "interrupted": N_("Interrupted"),
    },
}


@functools.lru_cache(maxsize=8)
def translations(language: str) -> NullTranslations:
    if language == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [language], domain="messages")


@dataclass
class Words:
    """gettext, labels and formats for one report."""

    language: str
    tz: tzinfo

    def __post_init__(self) -> None:
        self.t = translations(self.language)
        # A report formats the same few days and words thousands of times.
        self._days: dict[Any, str] = {}
        self._labels: dict[tuple[str, str], str] = {}

    def gettext(self, message: str, **params: Any) -> str:
        text = self.t.gettext(message)
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        text = self.t.ngettext(singular, plural, n)
        return text % {"num": n, **params}

    def label(self, group: str, value: Any) -> str:
        key = (group, str(value))
        text = self._labels.get(key)
        if text is None:
            message = LABELS.get(group, {}).get(key[1])
            text = self._labels[key] = self.t.gettext(message) if message else key[1]
        return text

    def when(self, value: str | datetime | None) -> str:
        moment = parse_iso(value) if isinstance(value, str) or value is None else value
        if moment is None:
            return ""
        local = moment.astimezone(self.tz)
        return (
            f"{format_date(local, 'medium', locale=self.language)}, "
            f"{format_time(local, 'short', locale=self.language)}"
        )

    def day(self, value: str | datetime | None) -> str:
        moment = parse_iso(value) if isinstance(value, str) or value is None else value
        if moment is None:
            return ""
        local = moment.astimezone(self.tz).date()
        text = self._days.get(local)
        if text is None:
            text = self._days[local] = format_date(local, "medium", locale=self.language)
        return text

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.language)

    def title(self, finding: Mapping[str, Any]) -> str:
        return checks.finding_title(
            finding["check"],
            port=finding["port"],
            address=finding["address"],
            evidence=finding["evidence"],
            stored=finding["title"],
            translate=self.t.gettext,
        )

    def remediation(self, finding: Mapping[str, Any]) -> str:
        return checks.remediation(finding["remediation"], self.t.gettext)


def words_for(snapshot: Mapping[str, Any]) -> Words:
    try:
        tz: tzinfo = zoneinfo.ZoneInfo(snapshot["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = UTC
    return Words(snapshot["language"], tz)


def report_title(snapshot: Mapping[str, Any], w: Words) -> str:
    """The schedule's name as its author wrote it; the default title in the report's language."""
    return snapshot["title"] if snapshot["schedule"] else w.gettext(snapshot["title"])


def scope_text(snapshot: Mapping[str, Any], w: Words) -> str:
    scope = snapshot["scope"]
    value = scope["value"]
    if scope["type"] == "site":
        return w.gettext("Assets of site %(name)s", name=value)
    if scope["type"] == "zone":
        return w.gettext("Assets of network zone %(name)s", name=value)
    if scope["type"] == "kind":
        return w.gettext("Assets of kind %(name)s", name=w.label("kind", value))
    if scope["type"] == "tag":
        return w.gettext("Assets tagged %(name)s", name=value)
    return w.gettext("All assets")


def summary(snapshot: Mapping[str, Any], w: Words) -> list[str]:
    """The opening paragraph, as sentences: what is most at risk, what is open, what changed,
    what is overdue, what is accepted."""
    totals = snapshot["totals"]
    by_severity = totals["open_by_severity"]
    sentences = []
    if totals["exposing"]:
        sentences.append(
            w.ngettext(
                "%(num)d system exposes patient data to anyone on the network; fix it first.",
                "%(num)d systems expose patient data to anyone on the network; fix these first.",
                totals["exposing"],
            )
        )
    elif by_severity["critical"]:
        sentences.append(
            w.ngettext(
                "No system exposes patient data openly, but %(num)d critical weakness remains; "
                "fix it first.",
                "No system exposes patient data openly, but %(num)d critical weaknesses remain; "
                "fix them first.",
                by_severity["critical"],
            )
        )
    else:
        sentences.append(w.gettext("No system exposes patient data to anyone on the network."))
    if totals["open"]:
        sentences.append(
            w.ngettext(
                "%(num)d weakness is open (%(critical)d critical, %(high)d high).",
                "%(num)d weaknesses are open (%(critical)d critical, %(high)d high).",
                totals["open"],
                critical=by_severity["critical"],
                high=by_severity["high"],
            )
        )
    else:
        sentences.append(w.gettext("No weakness is open."))
    if snapshot["changes"] is not None:
        sentences.append(
            w.gettext(
                "Since the previous report (%(date)s): %(new)d new, %(fixed)d fixed.",
                date=w.day(snapshot["changes"]["since"]),
                new=totals["new"],
                fixed=totals["fixed"],
            )
        )
    if totals["overdue"]:
        sentences.append(
            w.ngettext(
                "%(num)d of %(total)d assets was not audited on time.",
                "%(num)d of %(total)d assets were not audited on time.",
                totals["overdue"],
                total=totals["assets"],
            )
        )
    elif totals["assets"]:
        sentences.append(
            w.ngettext(
                "The %(num)d asset was audited on time.",
                "All %(num)d assets were audited on time.",
                totals["assets"],
            )
        )
    if totals["accepted"]:
        sentences.append(
            w.ngettext(
                "%(num)d risk is accepted until a set date.",
                "%(num)d risks are accepted until a set date.",
                totals["accepted"],
            )
        )
    return sentences
