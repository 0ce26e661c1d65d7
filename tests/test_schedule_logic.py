"""Schedule rules with an injected clock (no sleeping): what is due and in which order, jitter,
new and edited assets due at once, claims, interruptions, the global limit and `audit.stale`.
Every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from inventory.audit import AuditReport, ProbeOutcome, ProbeResult
from inventory.audit.probes.base import PortState, ServiceObservation
from inventory.models import AssetSchedule, Audit, Finding, FindingEvent
from inventory.models.types import utcnow
from inventory.scheduler.clock import ManualClock, new_random
from inventory.scheduler.due import next_due
from inventory.scheduler.windows import Rules, Window, WindowSet, parse_hhmm
from inventory.services import assets as asset_service
from inventory.services import schedule as svc
from inventory.services.stale import STALE, check_stale
from inventory.settings import Settings
from tests.factories import make_asset

NO_WINDOWS = Rules()


@pytest.fixture
def clock() -> ManualClock:
    """Real time plus a moment: the hooks that run while a test sets up data use the real clock."""
    return ManualClock(current=utcnow() + timedelta(seconds=5))


def row(session: Session, asset_id: int) -> AssetSchedule:
    session.expire_all()
    found = session.get(AssetSchedule, asset_id)
    assert found is not None
    return found


def set_due(session: Session, asset_id: int, when: datetime) -> None:
    session.execute(
        update(AssetSchedule).where(AssetSchedule.asset_id == asset_id).values(next_due_at=when)
    )
    session.commit()


def reachable_report(address: str = "127.0.0.1") -> AuditReport:
    return AuditReport(
        target="x",
        started_at=utcnow(),
        duration=1.5,
        results=[
            ProbeResult(
                "tcp",
                ProbeOutcome.ran,
                services=[ServiceObservation(address, 22, PortState.closed)],
                checks={"port.unexpected-open"},
            )
        ],
    )


def silent_report() -> AuditReport:
    return AuditReport(target="x", started_at=utcnow(), duration=2.0, results=[])


def audits(session: Session, asset_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Audit.outcome).where(Audit.asset_id == asset_id).order_by(Audit.id)
        ).all()
    )


def queue_and_claim(session: Session, clock: ManualClock, n: int = 10, worker: str = "w1"):
    svc.dispatch(session=session, now=clock.now(), rules=NO_WINDOWS, max_running=n, batch_size=n)
    return svc.claim(session=session, worker_id=worker, limit=n, now=clock.now(), claim_seconds=60)


# --- due at once, order, jitter ----------------------------------------------------------------


def test_a_new_asset_is_due_at_once(session, clock):
    asset = make_asset(session)
    due = row(session, asset.id).next_due_at
    assert due is not None and due <= clock.now()
    claims = queue_and_claim(session, clock)
    assert [c.asset_id for c in claims] == [asset.id]


def test_due_assets_go_out_most_overdue_first_within_the_global_limit(session, clock):
    assets = [make_asset(session) for _ in range(5)]
    lateness = [3, 50, 1, 20, 7]  # hours overdue
    for asset, hours in zip(assets, lateness, strict=True):
        set_due(session, asset.id, clock.now() - timedelta(hours=hours))
    future = make_asset(session)
    set_due(session, future.id, clock.now() + timedelta(hours=1))

    result = svc.dispatch(
        session=session, now=clock.now(), rules=NO_WINDOWS, max_running=2, batch_size=100
    )
    assert result.queued == 2
    first = svc.claim(session=session, worker_id="w1", limit=5, now=clock.now(), claim_seconds=60)
    assert [c.asset_id for c in first] == [assets[1].id, assets[3].id]  # 50 h, then 20 h late

    # Two running, limit two: nothing more is handed out until one ends.
    again = svc.dispatch(
        session=session, now=clock.now(), rules=NO_WINDOWS, max_running=2, batch_size=100
    )
    assert again.queued == 0 and again.running == 2
    svc.complete(
        session=session,
        claim=first[0],
        report=reachable_report(),
        worker_id="w1",
        now=clock.now(),
        settings=Settings(),
        rng=new_random(1),
    )
    after = svc.dispatch(
        session=session, now=clock.now(), rules=NO_WINDOWS, max_running=2, batch_size=100
    )
    assert after.queued == 1
    nxt = svc.claim(session=session, worker_id="w2", limit=5, now=clock.now(), claim_seconds=60)
    assert [c.asset_id for c in nxt] == [assets[4].id]  # 7 h late is next


def test_a_large_import_is_spread_not_fired_in_one_second(session, clock):
    rows = [
        asset_service.validate_asset(
            {"name": f"bulk-{i}", "addresses": f"10.9.{i // 250}.{i % 250 + 1}"}
        )
        for i in range(600)
    ]
    asset_service.create_assets(session=session, items=rows, actor="import")
    session.commit()
    created = svc.backfill(session=session, now=clock.now(), spread=120, rng=new_random(7))
    session.commit()
    assert created == 600
    dues = session.scalars(select(AssetSchedule.next_due_at)).all()
    assert all(clock.now() <= d <= clock.now() + timedelta(seconds=120) for d in dues)
    per_second = {}
    for d in dues:
        key = int((d - clock.now()).total_seconds())
        per_second[key] = per_second.get(key, 0) + 1
    assert len(per_second) > 90  # spread over the two minutes
    assert max(per_second.values()) < 30
    # A second run finds nothing left to create.
    assert svc.backfill(session=session, now=clock.now(), spread=120, rng=new_random(7)) == 0


def test_next_due_after_each_outcome():
    settings = Settings().scheduler
    rng = new_random(3)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    week = 7 * 86400
    dues = [
        next_due(t, outcome="completed", interval=week, settings=settings, rng=rng)
        for _ in range(200)
    ]
    assert all(t + timedelta(seconds=week * 0.95) <= d <= t + timedelta(seconds=week) for d in dues)
    assert len(set(dues)) > 150  # jitter: not all the same moment
    assert next_due(
        t, outcome="unreachable", interval=week, settings=settings, rng=rng
    ) == t + timedelta(hours=1)
    assert next_due(
        t, outcome="failed", interval=1800, settings=settings, rng=rng
    ) == t + timedelta(seconds=1800)
    assert next_due(t, outcome="interrupted", interval=week, settings=settings, rng=rng) == t


def test_completed_audit_sets_the_next_due_time_and_last_success(session, clock):
    asset = make_asset(session, criticality="critical")  # 24 h by default
    (claim,) = queue_and_claim(session, clock)
    clock.advance(30)
    audit = svc.complete(
        session=session,
        claim=claim,
        report=reachable_report(),
        worker_id="w1",
        now=clock.now(),
        settings=Settings(),
        rng=new_random(1),
    )
    assert audit is not None and audit.outcome == "completed" and audit.trigger == "scheduler"
    r = row(session, asset.id)
    assert r.claimed_by is None and r.queued_at is None and r.last_outcome == "completed"
    assert r.last_success_at == clock.now()
    assert clock.now() + timedelta(hours=22.5) <= r.next_due_at <= clock.now() + timedelta(hours=24)
    # An unreachable asset is tried again after retry_after; last success does not move.
    set_due(session, asset.id, clock.now())
    (claim,) = queue_and_claim(session, clock)
    svc.complete(
        session=session,
        claim=claim,
        report=silent_report(),
        worker_id="w1",
        now=clock.advance(60),
        settings=Settings(),
        rng=new_random(1),
    )
    r = row(session, asset.id)
    assert r.last_outcome == "unreachable" and r.next_due_at == clock.now() + timedelta(hours=1)
    assert r.last_success_at == clock.now() - timedelta(seconds=60)


def test_edited_addresses_or_services_make_the_asset_due_at_once(session, clock):
    asset = make_asset(session, addresses="10.1.0.1")
    (claim,) = queue_and_claim(session, clock)
    svc.complete(
        session=session,
        claim=claim,
        report=reachable_report(),
        worker_id="w1",
        now=clock.now(),
        settings=Settings(),
        rng=new_random(1),
    )
    assert row(session, asset.id).next_due_at > clock.now() + timedelta(days=6)

    data = asset_service.asset_to_data(asset)
    data.notes = "moved to rack C"
    asset_service.update_asset(session=session, asset_id=asset.id, data=data, actor="t")
    assert row(session, asset.id).next_due_at > clock.now() + timedelta(days=6)  # notes: no

    data.expected_services = ["443/tcp https"]
    asset_service.update_asset(session=session, asset_id=asset.id, data=data, actor="t")
    assert row(session, asset.id).next_due_at <= utcnow()

    # Edited again while being audited: that audit ends, then the asset is due again at once.
    clock.set(utcnow() + timedelta(seconds=1))
    (claim,) = queue_and_claim(session, clock)
    data.addresses = ["10.1.0.2"]
    asset_service.update_asset(session=session, asset_id=asset.id, data=data, actor="t")
    assert row(session, asset.id).rerun
    svc.complete(
        session=session,
        claim=claim,
        report=reachable_report(),
        worker_id="w1",
        now=clock.now(),
        settings=Settings(),
        rng=new_random(1),
    )
    r = row(session, asset.id)
    assert r.next_due_at == clock.now() and not r.rerun


def test_archived_assets_are_not_audited_and_restored_ones_are_due(session, clock):
    asset = make_asset(session)
    asset_service.archive_asset(session=session, asset_id=asset.id, actor="t")
    assert queue_and_claim(session, clock) == []
    asset_service.restore_asset(session=session, asset_id=asset.id, actor="t")
    clock.set(utcnow() + timedelta(seconds=1))
    assert [c.asset_id for c in queue_and_claim(session, clock)] == [asset.id]


# --- claims, expiry, interruption --------------------------------------------------------------


def test_an_expired_claim_is_marked_interrupted_and_due_again(session, clock):
    asset = make_asset(session)
    (claim,) = queue_and_claim(session, clock)
    clock.advance(30)
    assert svc.recover_expired(session=session, now=clock.now()) == 0  # still within its claim
    assert (
        svc.renew(
            session=session, worker_id="w1", claims=[claim], now=clock.now(), claim_seconds=60
        )
        == set()
    )
    clock.advance(50)
    assert svc.recover_expired(session=session, now=clock.now()) == 0  # renewed at +30
    clock.advance(20)
    assert svc.recover_expired(session=session, now=clock.now()) == 1
    assert audits(session, asset.id) == ["interrupted"]
    r = row(session, asset.id)
    assert r.claimed_by is None and r.next_due_at <= clock.now() and r.last_outcome == "interrupted"

    # The worker was only slow: its late result is dropped, not recorded twice.
    late = svc.complete(
        session=session,
        claim=claim,
        report=reachable_report(),
        worker_id="w1",
        now=clock.now(),
        settings=Settings(),
        rng=new_random(1),
    )
    assert late is None
    assert audits(session, asset.id) == ["interrupted"]
    assert svc.renew(
        session=session, worker_id="w1", claims=[claim], now=clock.now(), claim_seconds=60
    ) == {asset.id}
    # Due again: another worker takes it and records it once.
    (again,) = queue_and_claim(session, clock, worker="w2")
    assert again.asset_id == asset.id and again.token != claim.token
    svc.complete(
        session=session,
        claim=again,
        report=reachable_report(),
        worker_id="w2",
        now=clock.now(),
        settings=Settings(),
        rng=new_random(1),
    )
    assert audits(session, asset.id) == ["interrupted", "completed"]


def test_a_restarted_worker_interrupts_what_its_previous_life_held(session, clock):
    a, b = make_asset(session), make_asset(session)
    claims = queue_and_claim(session, clock, worker="site-a-1")
    assert len(claims) == 2
    assert svc.interrupt_worker(session=session, worker_id="site-a-1", now=clock.now()) == 2
    assert audits(session, a.id) == ["interrupted"] and audits(session, b.id) == ["interrupted"]
    assert len(queue_and_claim(session, clock, worker="site-a-1")) == 2


def test_claims_never_overlap(session, clock):
    for _ in range(30):
        make_asset(session)
    svc.dispatch(
        session=session, now=clock.now(), rules=NO_WINDOWS, max_running=100, batch_size=100
    )
    taken = []
    for worker in ("w1", "w2", "w3", "w1"):
        taken += [
            c.asset_id
            for c in svc.claim(
                session=session, worker_id=worker, limit=8, now=clock.now(), claim_seconds=60
            )
        ]
    assert len(taken) == len(set(taken)) == 30


# --- windows in the dispatcher -----------------------------------------------------------------


def test_the_dispatcher_holds_assets_of_a_zone_in_a_blackout(session, clock):
    radiology = make_asset(session, zone="Radiology")
    office = make_asset(session, zone="office")
    local = clock.now()
    window = Window(
        scope="zone",
        value="radiology",
        mode="blackout",
        days=frozenset({local.weekday()}),
        start=(local - timedelta(minutes=5)).time().replace(second=0, microsecond=0),
        end=(local + timedelta(minutes=30)).time().replace(second=0, microsecond=0),
    )
    if window.end <= window.start:
        pytest.skip("too close to midnight for this window")
    windows = WindowSet([window], tz=UTC)
    rules = windows.rules(clock.now())
    assert not rules.allows("radiology", "") and rules.allows("office", "")
    svc.dispatch(session=session, now=clock.now(), rules=rules, max_running=10, batch_size=10)
    claims = svc.claim(session=session, worker_id="w", limit=10, now=clock.now(), claim_seconds=60)
    assert [c.asset_id for c in claims] == [office.id]
    assert svc.pending(session=session, now=clock.now(), rules=rules) == 0
    assert svc.pending(session=session, now=clock.now(), rules=NO_WINDOWS) == 1
    assert windows.next_allowed("Radiology", "", clock.now()) > clock.now()
    clock.advance(40 * 60)
    rules = windows.rules(clock.now())
    svc.dispatch(session=session, now=clock.now(), rules=rules, max_running=10, batch_size=10)
    claims = svc.claim(session=session, worker_id="w", limit=10, now=clock.now(), claim_seconds=60)
    assert [c.asset_id for c in claims] == [radiology.id]


def test_queued_assets_go_back_when_their_window_closes(session, clock):
    asset = make_asset(session, site="Nord")
    svc.dispatch(session=session, now=clock.now(), rules=NO_WINDOWS, max_running=5, batch_size=5)
    closed = Rules(blocked_sites=frozenset({"nord"}))
    result = svc.dispatch(
        session=session, now=clock.now(), rules=closed, max_running=5, batch_size=5
    )
    assert result.unqueued == 1
    assert (
        svc.claim(session=session, worker_id="w", limit=5, now=clock.now(), claim_seconds=60) == []
    )
    assert row(session, asset.id).queued_at is None


def test_allowed_windows_restrict_their_assets_only(session, clock):
    night_only = make_asset(session, zone="modalities")
    other = make_asset(session, zone="office")
    rules = Rules(restricted_zones=frozenset({"modalities"}))  # its window is closed now
    svc.dispatch(session=session, now=clock.now(), rules=rules, max_running=5, batch_size=5)
    claims = svc.claim(session=session, worker_id="w", limit=5, now=clock.now(), claim_seconds=60)
    assert [c.asset_id for c in claims] == [other.id]
    rules = Rules(restricted_zones=frozenset({"modalities"}), open_zones=frozenset({"modalities"}))
    svc.dispatch(session=session, now=clock.now(), rules=rules, max_running=5, batch_size=5)
    claims = svc.claim(session=session, worker_id="w", limit=5, now=clock.now(), claim_seconds=60)
    assert [c.asset_id for c in claims] == [night_only.id]


# --- audit.stale -------------------------------------------------------------------------------


def stale_findings(session: Session) -> list[Finding]:
    session.expire_all()
    return list(session.scalars(select(Finding).where(Finding.check_id == STALE)).all())


def test_audit_stale_is_raised_fixed_and_reopened(session, clock):
    asset = make_asset(session, audit_interval="1d")
    fresh = make_asset(session, audit_interval="7d")
    settings = Settings()
    clock.advance(47 * 3600)
    assert check_stale(session=session, now=clock.now(), defaults=settings.assets) == (0, 0)
    clock.advance(2 * 3600)  # 49 h without a successful audit, interval 24 h
    assert check_stale(session=session, now=clock.now(), defaults=settings.assets) == (1, 0)
    (finding,) = stale_findings(session)
    assert (finding.asset_id, finding.subject, finding.severity, finding.status) == (
        asset.id,
        "asset",
        "medium",
        "open",
    )
    # Checking again changes nothing but last seen.
    clock.advance(600)
    assert check_stale(session=session, now=clock.now(), defaults=settings.assets) == (0, 0)
    assert len(stale_findings(session)) == 1

    # An unreachable audit is no success: still stale.
    set_due(session, asset.id, clock.now())
    set_due(session, fresh.id, clock.now() + timedelta(days=3))
    (claim,) = queue_and_claim(session, clock)
    svc.complete(
        session=session,
        claim=claim,
        report=silent_report(),
        worker_id="w",
        now=clock.now(),
        settings=settings,
        rng=new_random(1),
    )
    assert stale_findings(session)[0].status == "open"
    # A successful audit fixes it at once.
    set_due(session, asset.id, clock.now())
    (claim,) = queue_and_claim(session, clock)
    svc.complete(
        session=session,
        claim=claim,
        report=reachable_report(),
        worker_id="w",
        now=clock.now(),
        settings=settings,
        rng=new_random(1),
    )
    assert stale_findings(session)[0].status == "fixed"
    # Two days more without success: reopened, one finding throughout.
    clock.advance(49 * 3600)
    raised, _ = check_stale(session=session, now=clock.now(), defaults=settings.assets)
    assert raised == 1
    (finding,) = stale_findings(session)
    assert finding.status == "reopened"
    events = session.scalars(
        select(FindingEvent.new_status)
        .where(FindingEvent.finding_id == finding.id)
        .order_by(FindingEvent.id)
    ).all()
    assert events == ["open", "fixed", "reopened"]
    assert (
        session.scalar(
            select(func.count()).select_from(Finding).where(Finding.asset_id == fresh.id)
        )
        == 0
    )


def test_parse_hhmm_refuses_nonsense():
    assert parse_hhmm("7:05").hour == 7
    for bad in ("24:00", "7h", "", "12:60", "1200"):
        with pytest.raises(ValueError):
            parse_hhmm(bad)


def test_an_audit_run_by_hand_shows_on_the_schedule_and_ends_staleness(session):
    """"Audit now" (or the CLI) is the asset's last run for the schedule; a successful one fixes
    `audit.stale`; the next scheduled audit keeps its time."""
    from inventory.services.audits import audit_asset
    from tests.loopback import greeting_peer

    host = "127.42.177.1"
    asset = make_asset(session, addresses=host, audit_interval="1d")
    settings = Settings()
    later = utcnow() + timedelta(days=3)
    assert check_stale(session=session, now=later, defaults=settings.assets) == (1, 0)
    next_due_before = row(session, asset.id).next_due_at
    with greeting_peer(host) as port:
        audit_settings = settings.audit.model_copy(
            update={"default_ports": [port], "connect_timeout": 1.0, "read_timeout": 1.0}
        )
        audit = audit_asset(session=session, asset_id=asset.id, settings=audit_settings, actor="dr")
    assert audit.outcome == "completed"
    schedule = row(session, asset.id)
    assert schedule.last_outcome == "completed" and schedule.last_success_at is not None
    assert schedule.next_due_at == next_due_before
    (finding,) = stale_findings(session)
    assert finding.status == "fixed"
