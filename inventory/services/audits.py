"""Audits of assets: build the engine's target, run it, and store the outcome as findings.

The lifecycle (PRODUCT.md): a finding is new (open), still present (last seen moves), fixed only
when a later audit ran the check that raised it and it no longer holds, reopened when it comes
back, or accepted as a risk until a date. An audit that reached no address changes no finding.
One audit's results are written in one transaction: a crash leaves the previous state intact.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from inventory.audit import AuditReport, Target, run_audit
from inventory.audit.engine import OUT_OF_SCOPE, audit_many
from inventory.audit.probes.base import FindingCandidate, PortState
from inventory.models import (
    Asset,
    Audit,
    AuditOutcome,
    Finding,
    FindingEvent,
    FindingStatus,
    ObservedService,
    Severity,
)
from inventory.models.types import utcnow
from inventory.services.assets import get_asset
from inventory.services.findings import FindingQuery, list_findings
from inventory.services.vuln_match import VulnOptions
from inventory.validators import ExpectedService

__all__ = [
    "FindingQuery",
    "audit_asset",
    "audit_assets",
    "list_findings",
    "record_audit",
    "target_for",
]

ACTIVE = (FindingStatus.open, FindingStatus.reopened, FindingStatus.accepted)


def target_for(asset: Asset, settings: Any = None) -> Target:
    """What the engine needs to know about an asset; `settings` ([audit]) gives its zone's
    policy."""
    policy = settings.zone_policy(asset.zone) if settings is not None else None
    return Target(
        name=asset.name,
        addresses=tuple(asset.address_list),
        services=tuple(
            ExpectedService(s["port"], s["protocol"], s.get("name", ""))
            for s in asset.expected_services
        ),
        ae_titles=tuple(asset.ae_titles),
        hostnames=tuple(asset.hostnames),
        holds_patient_data=asset.holds_patient_data,
        options=frozenset(asset.optional_checks),
        allowed_ports=frozenset(policy.allowed_ports) if policy else frozenset(),
        unexpected_severity=policy.unexpected_severity if policy else "medium",
    )


def audit_asset(
    *,
    session: Session,
    asset_id: int,
    settings: Any,
    actor: str,
    trigger: str = "user",
    vulns: VulnOptions | None = None,
) -> Audit:
    """Audit one asset now (synchronously) and store the result. `vulns` ([vulns] settings, see
    inventory.services.vulns.options_from) decides which detected software is matched."""
    asset = get_asset(session=session, asset_id=asset_id)
    report = run_audit(target_for(asset, settings), settings)
    return _store(session, asset_id, report, actor, trigger, vulns)


def audit_assets(
    *,
    session: Session,
    asset_ids: Iterable[int],
    settings: Any,
    actor: str,
    trigger: str = "user",
    vulns: VulnOptions | None = None,
    threads: int = 32,
) -> Iterator[tuple[int, Audit]]:
    """Audit many assets at once and store each result as it comes (`inventory audit run --all`).

    The audits share one event loop and one set of connection limits (engine.audit_many, in a
    thread of its own, with `threads` threads for blocking probe libraries), so a thousand
    assets take about as long as the slowest few rather than the sum of all; each asset's
    results are still written in their own transaction, here, in the caller's thread (the
    session's). Yields (asset id, audit) in the order the audits end.
    """
    by_name: dict[str, int] = {}
    targets = []
    for asset_id in asset_ids:
        target = target_for(get_asset(session=session, asset_id=asset_id), settings)
        by_name[target.name] = asset_id
        targets.append(target)
    reports: queue.SimpleQueue[AuditReport | BaseException | None] = queue.SimpleQueue()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]] = []
    started = threading.Event()

    async def collect() -> None:
        async for report in audit_many(targets, settings):
            reports.put(report)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(threads))
        task = asyncio.create_task(collect())
        running.append((loop, task))
        started.set()
        try:
            await task
        except asyncio.CancelledError:
            pass  # the caller stopped reading: the audits under way were cancelled

    def engine() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            reports.put(exc)
        finally:
            started.set()
            reports.put(None)

    thread = threading.Thread(target=engine, name="vigie-audit-many", daemon=True)
    thread.start()
    try:
        while (item := reports.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            asset_id = by_name[item.target]
            yield asset_id, _store(session, asset_id, item, actor, trigger, vulns)
    finally:
        started.wait()
        for loop, task in running:  # stopped early (an error, Ctrl-C): end the audits too
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:
                    pass  # the loop ended meanwhile
        thread.join()


def _store(
    session: Session,
    asset_id: int,
    report: AuditReport,
    actor: str,
    trigger: str,
    vulns: VulnOptions | None,
) -> Audit:
    from inventory.services import schedule as schedule_service

    now = utcnow()
    outcome = AuditOutcome.completed if report.reachable else AuditOutcome.unreachable
    schedule_service.audit_recorded(
        session=session,
        asset_id=asset_id,
        outcome=outcome,
        duration=report.duration,
        now=now,
        actor=actor,
    )
    # record_audit commits: the schedule's "last run" and the audit itself together.
    return record_audit(
        session=session,
        asset_id=asset_id,
        report=report,
        actor=actor,
        trigger=trigger,
        now=now,
        vulns=vulns,
    )


def _event(
    finding: Finding, actor: str, new: FindingStatus, now: datetime, note: str = ""
) -> FindingEvent:
    event = FindingEvent(
        finding_id=finding.id,  # type: ignore[arg-type]
        at=now,
        actor=actor,
        old_status=str(finding.status) if finding.id is not None else None,
        new_status=str(new),
        note=note,
    )
    finding.status = new
    return event


def record_audit(
    *,
    session: Session,
    asset_id: int,
    report: AuditReport,
    actor: str,
    trigger: str = "user",
    now: datetime | None = None,
    vulns: VulnOptions | None = None,
) -> Audit:
    """Store an audit and move each finding along its lifecycle, in one transaction; then, when
    it reached the asset, match the software it detected against known vulnerabilities."""
    now = now or utcnow()
    who = f"audit by {actor}"[:64]
    try:
        audit = Audit(
            asset_id=asset_id,
            trigger=trigger,
            actor=actor[:64],
            started_at=report.started_at,
            finished_at=now,
            duration=report.duration,
            outcome=AuditOutcome.completed if report.reachable else AuditOutcome.unreachable,
            probes=[
                {
                    "probe": r.probe,
                    "outcome": str(r.outcome),
                    "reason": r.reason,
                    "duration": round(r.duration, 3),
                }
                for r in report.results
            ],
        )
        session.add(audit)
        existing = {
            (f.check_id, f.subject): f
            for f in session.scalars(select(Finding).where(Finding.asset_id == asset_id))
        }
        # Without an answer from the asset only the scope check (which sends nothing) is judged.
        judged = report.checks_run if report.reachable else report.checks_run & {OUT_OF_SCOPE}
        seen: set[tuple[str, str]] = set()
        for candidate in report.findings:
            if candidate.check not in judged:
                continue
            key = (candidate.check, candidate.subject)
            seen.add(key)
            _found(session, existing.get(key), candidate, asset_id, who, now)
        probed = report.answering_addresses
        for key, finding in existing.items():
            if key in seen or finding.status not in ACTIVE or finding.check_id not in judged:
                continue
            if finding.check_id != OUT_OF_SCOPE and finding.address not in probed:
                continue  # that address was not examined this time
            finding.fixed_at = now
            session.add(_event(finding, who, FindingStatus.fixed, now, "no longer observed"))
        if report.reachable:
            _store_services(session, asset_id, report, now)
        session.commit()
    except Exception:
        session.rollback()
        raise
    if report.reachable:
        from inventory.services.vulns import after_audit

        after_audit(session=session, asset_id=asset_id, options=vulns, actor=actor, now=now)
    return audit


def _found(
    session: Session,
    finding: Finding | None,
    candidate: FindingCandidate,
    asset_id: int,
    who: str,
    now: datetime,
) -> None:
    if finding is None:
        finding = Finding(
            asset_id=asset_id,
            check_id=candidate.check,
            subject=candidate.subject,
            address=candidate.address,
            port=candidate.port,
            severity=Severity(candidate.severity),
            title=candidate.title[:255],
            remediation=candidate.remediation,
            evidence=candidate.evidence,
            status=FindingStatus.open,
            first_seen=now,
            last_seen=now,
        )
        session.add(finding)
        session.flush()
        session.add(
            FindingEvent(
                finding_id=finding.id, at=now, actor=who, old_status=None, new_status="open"
            )  # type: ignore[arg-type]
        )
        return
    finding.last_seen = now
    finding.title = candidate.title[:255]
    finding.evidence = candidate.evidence
    if finding.status == FindingStatus.fixed:
        finding.fixed_at = None
        session.add(_event(finding, who, FindingStatus.reopened, now, "observed again"))
    elif (
        finding.status == FindingStatus.accepted
        and finding.accepted_until
        and finding.accepted_until <= now
    ):
        session.add(_event(finding, who, FindingStatus.reopened, now, "risk acceptance expired"))


def _store_services(session: Session, asset_id: int, report: AuditReport, now: datetime) -> None:
    current = {
        (s.address, s.port, s.protocol): s
        for s in session.scalars(
            select(ObservedService).where(ObservedService.asset_id == asset_id)
        )
    }
    open_now = {
        (s.address, s.port, s.protocol): s for s in report.services if s.state is PortState.open
    }
    for key, row in current.items():
        if key not in open_now:
            session.delete(row)
    for key, seen in open_now.items():
        row = current.get(key) or ObservedService(
            asset_id=asset_id, address=key[0], port=key[1], protocol=key[2], first_seen=now
        )
        row.service, row.banner = seen.service[:64], seen.banner[:255]
        row.product, row.version = seen.product[:128], seen.version[:64]
        row.last_seen = now
        session.add(row)
