"""Maintenance windows: weekly time ranges, in the configured time zone, per zone or site.

A window is either a blackout (no audit while it is open: "never probe the radiology modalities
07:00-19:00 on weekdays") or an allowed window (audits only while one is open). Times are wall-clock
times in the configured zone, so "07:00-19:00" stays 07:00-19:00 across daylight-saving changes;
a range whose end is before its start runs past midnight and belongs to the day it starts on.
Pure logic: the services load the rows and hand them over as Window values.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

BLACKOUT = "blackout"
ALLOWED = "allowed"
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_hhmm(text: str) -> time:
    """'7:00', '07:00', '23:59' -> time; anything else raises ValueError."""
    match = _HHMM.fullmatch(text.strip())
    if not match:
        raise ValueError(text)
    return time(int(match.group(1)), int(match.group(2)))


def resolve_timezone(name: str) -> tzinfo:
    """The configured zone ([general] timezone), or the machine's own when none is set."""
    if name:
        return zoneinfo.ZoneInfo(name)
    try:
        import tzlocal

        return tzlocal.get_localzone()  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - an odd machine setting: fall back to UTC, never crash
        return UTC


@dataclass(frozen=True)
class Window:
    scope: str  # all, zone, site
    value: str  # zone or site name (compared without case)
    mode: str  # blackout or allowed
    days: frozenset[int]  # weekdays it starts on, 0 = Monday
    start: time
    end: time
    name: str = ""

    @property
    def key(self) -> str:
        return self.value.strip().lower()

    def applies_to(self, zone: str, site: str) -> bool:
        if self.scope == "all":
            return True
        wanted = zone if self.scope == "zone" else site
        return wanted.strip().lower() == self.key

    def is_open(self, local: datetime) -> bool:
        """Whether the window is open at `local` (a wall-clock time in the configured zone)."""
        now, weekday = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= now < self.end
        # Past midnight: the evening part is on a listed day, the morning part on the day after.
        return (weekday in self.days and now >= self.start) or (
            (weekday - 1) % 7 in self.days and now < self.end
        )


@dataclass(frozen=True)
class Rules:
    """What the windows say at one moment, as sets a database query can use.

    An asset may be audited unless a blackout that applies to it is open, or allowed windows
    apply to it and none of those is open.
    """

    all_blocked: bool = False
    blocked_zones: frozenset[str] = frozenset()
    blocked_sites: frozenset[str] = frozenset()
    restricted_all: bool = False  # an allowed window covers every asset
    restricted_zones: frozenset[str] = frozenset()
    restricted_sites: frozenset[str] = frozenset()
    open_all: bool = False
    open_zones: frozenset[str] = frozenset()
    open_sites: frozenset[str] = frozenset()

    @property
    def unrestricted(self) -> bool:
        """No window holds anything back now (the common case: no query condition needed)."""
        return not (
            self.all_blocked
            or self.blocked_zones
            or self.blocked_sites
            or (
                (self.restricted_all or self.restricted_zones or self.restricted_sites)
                and not self.open_all
            )
        )

    def allows(self, zone: str, site: str) -> bool:
        zone, site = zone.strip().lower(), site.strip().lower()
        if self.all_blocked or zone in self.blocked_zones or site in self.blocked_sites:
            return False
        restricted = (
            self.restricted_all or zone in self.restricted_zones or site in self.restricted_sites
        )
        if not restricted or self.open_all:
            return True
        return zone in self.open_zones or site in self.open_sites


@dataclass
class WindowSet:
    windows: list[Window]
    tz: tzinfo = UTC
    _horizon_days: int = field(default=8, repr=False)

    def rules(self, at: datetime) -> Rules:
        local = at.astimezone(self.tz)
        blocked_all = restricted_all = open_all = False
        blocked_z: set[str] = set()
        blocked_s: set[str] = set()
        restricted_z: set[str] = set()
        restricted_s: set[str] = set()
        open_z: set[str] = set()
        open_s: set[str] = set()
        for w in self.windows:
            is_open = w.is_open(local)
            if w.mode == BLACKOUT:
                if not is_open:
                    continue
                if w.scope == "all":
                    blocked_all = True
                else:
                    (blocked_z if w.scope == "zone" else blocked_s).add(w.key)
                continue
            if w.scope == "all":
                restricted_all = True
                open_all = open_all or is_open
            else:
                (restricted_z if w.scope == "zone" else restricted_s).add(w.key)
                if is_open:
                    (open_z if w.scope == "zone" else open_s).add(w.key)
        return Rules(
            blocked_all,
            frozenset(blocked_z),
            frozenset(blocked_s),
            restricted_all,
            frozenset(restricted_z),
            frozenset(restricted_s),
            open_all,
            frozenset(open_z),
            frozenset(open_s),
        )

    def allows(self, zone: str, site: str, at: datetime) -> bool:
        return self.rules(at).allows(zone, site)

    def _boundaries(self, windows: Iterable[Window], at: datetime) -> list[datetime]:
        """Every start and end of these windows from the day before `at` to the horizon, in UTC.

        A wall-clock time that does not exist on a spring-forward day is read as the offset before
        the change (02:30 becomes 03:30), one that happens twice in autumn as its first occurrence.
        """
        first = at.astimezone(self.tz).date() - timedelta(days=1)
        instants = set()
        for w in windows:
            for offset in range(self._horizon_days + 2):
                day: date = first + timedelta(days=offset)
                if day.weekday() not in w.days:
                    continue
                end_day = day if w.start < w.end else day + timedelta(days=1)
                for d, t in ((day, w.start), (end_day, w.end)):
                    local = datetime.combine(d, t, tzinfo=self.tz)
                    instants.add(local.astimezone(UTC))
        return sorted(i for i in instants if i > at)

    def next_allowed(self, zone: str, site: str, at: datetime) -> datetime | None:
        """When the asset may next be audited: `at` itself if now, None beyond a week ahead."""
        if self.allows(zone, site, at):
            return at
        relevant = [w for w in self.windows if w.applies_to(zone, site)]
        for instant in self._boundaries(relevant, at):
            if self.allows(zone, site, instant):
                return instant
        return None
