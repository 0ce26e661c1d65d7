"""/api/v1/assets/<id>/audits and /services: what the audits of one asset did and saw, and
"audit now" (auditor or admin), synchronously as the web button and `inventory audit run` do."""

from __future__ import annotations

from typing import Any

from flask import current_app

from inventory.api.base import actor, bp, error, int_arg, iso, requires
from inventory.api.findings import finding_public
from inventory.db import get_session
from inventory.models import Audit, FindingStatus, ObservedService, Role, Severity
from inventory.services import assets as asset_service
from inventory.services import findings as finding_service
from inventory.services.audits import audit_asset
from inventory.services.vulns import options_from

MAX_AUDITS = 100


def _audit_public(audit: Audit) -> dict[str, Any]:
    return {
        "id": audit.id,
        "asset_id": audit.asset_id,
        "trigger": audit.trigger,
        "actor": audit.actor,
        "started_at": iso(audit.started_at),
        "finished_at": iso(audit.finished_at),
        "duration": round(audit.duration, 3),
        "outcome": str(audit.outcome),
        "probes": [
            {
                "probe": p.get("probe"),
                "outcome": p.get("outcome"),
                "reason": p.get("reason", ""),
                "duration": p.get("duration"),
            }
            for p in audit.probes
        ],
    }


def _service_public(service: ObservedService) -> dict[str, Any]:
    return {
        "address": service.address,
        "port": service.port,
        "protocol": service.protocol,
        "service": service.service,
        "banner": service.banner,
        "product": service.product,
        "version": service.version,
        "first_seen": iso(service.first_seen),
        "last_seen": iso(service.last_seen),
    }


@bp.get("/assets/<int:asset_id>/audits")
@requires(Role.viewer)
def list_audits(asset_id: int) -> Any:
    """The latest audits, newest first (`limit`, at most 100), each with its probes' outcomes."""
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    limit = int_arg("limit", 10, 1, MAX_AUDITS)
    audits = finding_service.latest_audits(session=db, asset_id=asset_id, limit=limit)
    return {
        "asset": {"id": asset.id, "name": asset.name},
        "items": [_audit_public(a) for a in audits],
    }


@bp.get("/assets/<int:asset_id>/services")
@requires(Role.viewer)
def list_services(asset_id: int) -> Any:
    """Open ports as the latest audit that reached the asset saw them."""
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    services = finding_service.observed_services(session=db, asset_id=asset_id)
    return {
        "asset": {"id": asset.id, "name": asset.name},
        "items": [_service_public(s) for s in services],
    }


@bp.post("/assets/<int:asset_id>/audits")
@requires(Role.auditor)
def audit_now(asset_id: int) -> Any:
    """Audit now and answer with the audit, the open ports and the asset's findings afterwards.

    An asset that did not answer still gets its audit (outcome "unreachable"); its findings are
    left as they were, as the audit rules say.
    """
    db = get_session()
    asset = asset_service.get_asset(session=db, asset_id=asset_id)
    if asset.is_archived:
        return error(409, "archived", "This asset is archived; restore it before auditing it.")
    settings = current_app.extensions["inventory.settings"]
    audit = audit_asset(
        session=db,
        asset_id=asset_id,
        settings=settings.audit,
        actor=actor(),
        trigger="api",
        vulns=options_from(settings),
    )
    finding_service.expire_acceptances(session=db)
    findings = finding_service.findings_of(session=db, asset_id=asset_id)
    to_fix = [f for f in findings if f.status in finding_service.OPEN_STATUSES]
    by_status = {s.value: 0 for s in FindingStatus}
    for f in findings:
        by_status[str(f.status)] += 1
    by_severity = {s.value: 0 for s in reversed(Severity)}
    for f in to_fix:
        by_severity[str(f.severity)] += 1
    body = {
        "asset": {"id": asset.id, "name": asset.name},
        "audit": _audit_public(audit),
        "open_ports": len(finding_service.observed_services(session=db, asset_id=asset_id)),
        "findings": {
            "open": len(to_fix),
            "by_status": by_status,
            "open_by_severity": by_severity,
            "open_items": [finding_public(f, asset) for f in to_fix],
        },
    }
    return body, 201
