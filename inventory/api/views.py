"""/api/v1 assembled: one blueprint `bp` (defined in base.py) with the routes of each area.

Importing an area's module registers its routes on `bp`; the app factory registers `bp` itself.
    base.py      authentication, roles, JSON errors, argument readers
    assets.py    /assets
    findings.py  /findings, /findings/<id>, /findings/<id>/accept
    audits.py    /assets/<id>/audits (list, audit now), /assets/<id>/services
    reports.py   /reports, /reports/<id>, /reports/<id>/<format>, /report-schedules/<id>/run
"""

from __future__ import annotations

from inventory.api import assets, audits, findings, reports
from inventory.api.base import bp

__all__ = ["assets", "audits", "bp", "findings", "reports"]
