"""Maintenance windows in the configured time zone (midnight, daylight saving) and the pacing of
new connections, with injected time: nothing here sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from inventory.scheduler.clock import ManualClock
from inventory.scheduler.ratelimit import ConnectionPacer, connection_cost
from inventory.scheduler.windows import Window, WindowSet, parse_hhmm

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def window(start: str, end: str, days=EVERY_DAY, mode="blackout", scope="zone", value="radiology"):
    return Window(scope, value, mode, frozenset(days), parse_hhmm(start), parse_hhmm(end))


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_radiology_is_never_probed_during_weekday_hours():
    rules = WindowSet([window("07:00", "19:00", WEEKDAYS)], tz=PARIS)
    monday = paris(2026, 11, 23)
    assert not rules.allows("Radiology ", "", monday.replace(hour=7))  # any case, trimmed
    assert not rules.allows("radiology", "", monday.replace(hour=18, minute=59))
    assert rules.allows("radiology", "", monday.replace(hour=19))
    assert rules.allows("radiology", "", monday.replace(hour=6, minute=59))
    assert rules.allows("office", "", monday.replace(hour=12))  # other zones are not concerned
    assert rules.allows("radiology", "", paris(2026, 11, 28, 12))  # Saturday
    # Asked at 10:00 on Monday, the next chance is 19:00 the same day, Paris time.
    assert rules.next_allowed("radiology", "", monday.replace(hour=10)) == monday.replace(hour=19)
    # Friday 18:00: at 19:00; Saturday noon: now.
    friday = paris(2026, 11, 27, 18)
    assert rules.next_allowed("radiology", "", friday) == friday.replace(hour=19)


def test_a_window_across_midnight_belongs_to_the_day_it_starts():
    # Audits only at night, starting Monday to Friday evenings.
    rules = WindowSet(
        [window("22:00", "05:00", WEEKDAYS, mode="allowed", scope="site", value="Nord")], tz=PARIS
    )
    assert rules.allows("", "nord", paris(2026, 11, 23, 23, 30))  # Monday night
    assert rules.allows("", "nord", paris(2026, 11, 24, 4, 59))  # Tuesday early: Monday's window
    assert not rules.allows("", "nord", paris(2026, 11, 24, 5, 0))
    assert rules.allows("", "nord", paris(2026, 11, 28, 4, 0))  # Saturday early: Friday's window
    assert not rules.allows("", "nord", paris(2026, 11, 29, 4, 0))  # Sunday early: no Saturday one
    assert not rules.allows("", "nord", paris(2026, 11, 23, 0, 30))  # Monday early: no Sunday one
    assert rules.allows("", "sud", paris(2026, 11, 29, 4, 0))  # other sites are not restricted
    # Saturday noon: the next window opens Monday 22:00.
    assert rules.next_allowed("", "nord", paris(2026, 11, 28, 12)) == paris(2026, 11, 23 + 7, 22)


def test_wall_clock_hours_hold_across_daylight_saving_changes():
    rules = WindowSet([window("07:00", "19:00", EVERY_DAY, scope="all", value="")], tz=PARIS)
    # 29 March 2026: clocks go from 02:00 to 03:00 in Paris. 07:00 local is 05:00 UTC that day,
    # 06:00 UTC the day before.
    assert rules.allows("", "", datetime(2026, 3, 28, 5, 59, tzinfo=UTC))
    assert not rules.allows("", "", datetime(2026, 3, 28, 6, 0, tzinfo=UTC))
    assert not rules.allows("", "", datetime(2026, 3, 29, 5, 0, tzinfo=UTC))
    assert rules.allows("", "", datetime(2026, 3, 29, 4, 59, tzinfo=UTC))
    assert rules.next_allowed("", "", datetime(2026, 3, 29, 12, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 17, 0, tzinfo=UTC
    )
    # 25 October 2026: back from 03:00 to 02:00. 19:00 local is 18:00 UTC that day.
    assert not rules.allows("", "", datetime(2026, 10, 25, 17, 59, tzinfo=UTC))
    assert rules.allows("", "", datetime(2026, 10, 25, 18, 0, tzinfo=UTC))
    assert rules.next_allowed("", "", datetime(2026, 10, 24, 12, 0, tzinfo=UTC)) == datetime(
        2026, 10, 24, 17, 0, tzinfo=UTC
    )


def test_a_window_inside_the_skipped_hour_and_the_repeated_hour():
    # 02:00-03:00 does not exist on 29 March in Paris: that night the window never opens.
    spring = WindowSet([window("02:00", "03:00", EVERY_DAY, scope="all", value="")], tz=PARIS)
    gap = [datetime(2026, 3, 29, 0, 0, tzinfo=UTC) + timedelta(minutes=m) for m in range(0, 120, 5)]
    assert all(spring.allows("", "", t) for t in gap)
    assert not spring.allows(
        "", "", datetime(2026, 3, 28, 1, 30, tzinfo=UTC)
    )  # 02:30 the day before
    # 02:00-03:00 happens twice on 25 October: closed both times (two UTC hours).
    autumn = spring
    assert not autumn.allows("", "", datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # first 02:30
    assert not autumn.allows("", "", datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # second 02:30
    assert autumn.allows("", "", datetime(2026, 10, 25, 2, 0, tzinfo=UTC))  # 03:00


def test_the_configured_time_zone_decides_not_utc():
    w = window("07:00", "19:00", WEEKDAYS, scope="all", value="")
    t = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # 06:30 UTC, 07:30 Paris, 01:30 New York
    assert not WindowSet([w], tz=PARIS).allows("", "", t)
    assert WindowSet([w], tz=ZoneInfo("America/New_York")).allows("", "", t)
    assert WindowSet([w], tz=UTC).allows("", "", t)


def test_blackout_beats_allowed_and_global_windows_cover_everyone():
    windows = WindowSet(
        [
            window("00:00", "23:59", EVERY_DAY, mode="allowed", scope="all", value=""),
            window("12:00", "13:00", EVERY_DAY, mode="blackout", scope="site", value="lyon"),
        ],
        tz=UTC,
    )
    noon = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
    assert not windows.allows("", "Lyon", noon)
    assert windows.allows("", "Paris", noon)
    assert not windows.allows("", "Paris", datetime(2026, 11, 23, 23, 59, 30, tzinfo=UTC))
    assert windows.rules(noon).blocked_sites == {"lyon"}


def test_connections_are_paced_to_the_configured_rate():
    clock = ManualClock()
    pacer = ConnectionPacer(100, monotonic=clock.monotonic)  # 100 connections per second
    started: list[tuple[float, int]] = []
    for _ in range(40):
        cost = 40
        wait = pacer.reserve(cost)
        started.append((clock.monotonic() + wait, cost))
        clock.advance(0.05)  # audits keep arriving faster than the budget allows
    # Over any span from 0 to T at most rate x (T + 1 s burst) + one audit's connections started.
    for t in (0.5, 1, 2, 5, 10, 16):
        opened = sum(cost for when, cost in started if when <= t)
        assert opened <= 100 * (t + 1) + 40
    # And the pacer does not hold back more than it must: all 1,600 within ~16 s.
    assert max(when for when, _ in started) <= 1600 / 100
    # Idle for a while, then a burst of one second's worth (plus one audit) starts at once.
    clock.advance(60)
    waits = [pacer.reserve(50) for _ in range(4)]
    assert waits[:3] == [0, 0, 0] and waits[3] > 0


def test_connection_cost_counts_every_address_and_port():
    assert connection_cost(2, [21, 22, 80], [80, 4242]) == 8
    assert connection_cost(0, [], []) == 1
