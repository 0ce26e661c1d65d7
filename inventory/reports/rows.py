"""The report's long tables, written in Python rather than through template macros: a report
can list 100,000 findings, and a macro call per cell made the HTML five times slower. Every value
is HTML-escaped (quotes too) on its way in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape as _escape
from typing import Any

from markupsafe import Markup

from inventory.reports.data import SEVERITIES
from inventory.reports.words import Words

Finding = Mapping[str, Any]


def escape(value: Any) -> str:
    """HTML-escaped text (quotes too), as a plain str: cheaper than a Markup per cell."""
    return _escape(str(value))


class Rows:
    """Row makers bound to one report's words and assets."""

    def __init__(self, w: Words, assets: Mapping[int, Mapping[str, Any]]) -> None:
        self.w = w
        self.assets = assets
        self.badges = {
            s: Markup(f'<span class="sev sev-{s}">{escape(w.label("severity", s))}</span>')
            for s in SEVERITIES
        }
        self.statuses = {
            s: escape(w.label("status", s)) for s in ("open", "reopened", "accepted", "fixed")
        }
        self._refs: dict[int, str] = {}

    def badge(self, severity: str) -> Markup:
        return self.badges.get(severity) or Markup(escape(severity))

    def where(self, f: Finding) -> str:
        where = escape(f["address"])
        return f"{where}:{f['port']}" if f["port"] else where

    def ref(self, asset_id: int) -> str:
        ref = self._refs.get(asset_id)
        if ref is None:
            name = escape(self.assets[asset_id]["name"])
            ref = self._refs[asset_id] = f'<a href="#asset-{asset_id}" class="ref">{name}</a>'
        return ref

    def table(
        self,
        findings: Sequence[Finding],
        *,
        head: Sequence[str],
        extra: Callable[[Finding], str] | None = None,
    ) -> Markup:
        """Severity, finding, asset, where (and one more column): the changes' lists."""
        w, parts = self.w, ["<table><thead><tr>"]
        parts += [f"<th>{escape(h)}</th>" for h in head]
        parts.append("</tr></thead><tbody>")
        for f in findings:
            parts.append(
                f"<tr><td>{self.badge(f['severity'])}</td><td>{escape(w.title(f))}</td>"
                f'<td>{self.ref(f["asset_id"])}</td><td class="nowrap">{self.where(f)}</td>'
            )
            if extra is not None:
                parts.append(f"<td>{extra(f)}</td>")
            parts.append("</tr>")
        parts.append("</tbody></table>")
        return Markup("".join(parts))

    def accepted(self, f: Finding) -> str:
        until = escape(self.w.gettext("until %(date)s", date=self.w.day(f["accepted_until"])))
        return (
            f'{escape(f["accepted_reason"])} <span class="muted nowrap">({until}, '
            f"{escape(f['accepted_by'])})</span>"
        )

    def fixed_on(self, f: Finding) -> str:
        return escape(self.w.day(f["fixed_at"]))

    def asset_findings(self, findings: Sequence[Finding], head: Sequence[str]) -> Markup:
        """One asset's findings in the HTML appendix."""
        w, parts = self.w, ["<table><thead><tr>"]
        parts += [f"<th>{escape(h)}</th>" for h in head]
        parts.append("</tr></thead><tbody>")
        for f in findings:
            status = self.statuses.get(f["status"], escape(f["status"]))
            if f["status"] == "accepted":
                until = w.gettext("until %(date)s", date=w.day(f["accepted_until"]))
                status = f"{status} ({escape(until)})"
            parts.append(
                f"<tr><td>{self.badge(f['severity'])}</td><td>{escape(w.title(f))}</td>"
                f'<td class="nowrap">{self.where(f)}</td><td class="status">{status}</td>'
                f'<td class="nowrap">{escape(w.day(f["first_seen"]))}</td></tr>'
            )
        parts.append("</tbody></table>")
        return Markup("".join(parts))

    def lines(self, findings: Sequence[Finding]) -> Markup:
        """One asset's findings in the PDF appendix (smaller inventories): a line each."""
        parts = ['<ul class="lines">']
        for f in findings:
            status = self.statuses.get(f["status"], escape(f["status"]))
            parts.append(
                f"<li>{self.badge(f['severity'])} {escape(self.w.title(f))} "
                f'<span class="status">· {status}</span></li>'
            )
        parts.append("</ul>")
        return Markup("".join(parts))

    def asset_line(self, asset: Mapping[str, Any], counts: Sequence[tuple[str, int]]) -> Markup:
        """One asset in a large inventory's PDF appendix, as one plain line of text."""
        w = self.w
        parts = [asset["name"], asset["kind"]]
        parts += [asset[k] for k in ("site", "zone") if asset[k]]
        if asset["addresses"]:
            parts.append(asset["addresses"][0])
        if asset["patient_data"]:
            parts.append(w.gettext("patient data"))
        found = ", ".join(
            w.gettext("%(num)d accepted", num=n)
            if key == "accepted"
            else f"{n} {w.label('severity', key).lower()}"
            for key, n in counts
        )
        return Markup(escape(" · ".join(parts) + " — " + (found or w.gettext("no open finding"))))

    def asset_facts(self, a: Mapping[str, Any]) -> Markup:
        """The line under an asset's name in the appendix: what it is, where, how exposed."""
        w = self.w
        parts = [w.label("kind", a["kind"])]
        if a["site"]:
            parts.append(a["site"])
        if a["zone"]:
            parts.append(w.gettext("zone %(name)s", name=a["zone"]))
        if a["addresses"]:
            parts.append(", ".join(a["addresses"]))
        criticality = w.label("criticality", a["criticality"]).lower()
        parts.append(w.gettext("criticality: %(value)s", value=criticality))
        if a["patient_data"]:
            parts.append(w.gettext("holds patient data"))
        parts.append(w.label("exposure", a["exposure"]))
        if a["owner"]:
            parts.append(a["owner"])
        audited = w.day(a["last_success_at"]) if a["last_success_at"] else w.gettext("never")
        parts.append(w.gettext("last successful audit: %(date)s", date=audited))
        return Markup(escape(" · ".join(parts)))
