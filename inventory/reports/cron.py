"""Cron-like timing of report schedules: five fields, in the configured time zone.

`minute hour day month weekday`, as in crontab: `*`, numbers, ranges (`1-5`), lists (`1,15`),
steps (`*/15`, `8-18/2`), month names (`jan`) and weekday names (`mon`; 0 and 7 are Sunday, as in
crontab). Unlike crontab, when both day and weekday are given, a time must match both
("0 7 1-7 * mon" is the first Monday of the month). Next run times come from APScheduler 3's
CronTrigger, which handles daylight-saving changes: a time that does not exist that night is
skipped to the next valid one, a repeated time runs once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from inventory.i18n import N_, render

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 7),
)
# The field names, as messages name them (the web layer translates them too).
FIELD_NAMES = (N_("minute"), N_("hour"), N_("day"), N_("month"), N_("weekday"))
_ITEM = re.compile(r"(\*|\w+(?:-\w+)?)(?:/(\d+))?")


class CronError(ValueError):
    """A timing that cannot be read; the message is a translatable msgid with parameters."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message, self.params = message, params

    def render(self) -> str:
        return render(self.message, self.params)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_any: bool
    weekday_any: bool

    def trigger(self, tz: tzinfo) -> CronTrigger:
        # APScheduler 3 numbers weekdays from Monday: names avoid the mix-up.
        weekday = "*" if self.weekday_any else ",".join(WEEKDAYS[d] for d in sorted(self.weekdays))
        return CronTrigger(
            minute=_join(self.minutes),
            hour=_join(self.hours),
            day="*" if self.day_any else _join(self.days),
            month=_join(self.months),
            day_of_week=weekday,
            timezone=tz,
        )

    def next_after(self, moment: datetime, tz: tzinfo) -> datetime | None:
        """The first run time strictly after `moment` (None: never, e.g. 31 February)."""
        from datetime import UTC, timedelta

        start = moment.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
        found = self.trigger(tz).get_next_fire_time(None, start)
        return found.astimezone(UTC) if found is not None else None


def _join(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _number(token: str, name: str, low: int, high: int) -> int:
    token = token.lower()
    if name == "month" and token in MONTHS:
        return MONTHS.index(token) + 1
    if name == "weekday" and token in WEEKDAYS:
        return WEEKDAYS.index(token)
    if not token.isdigit():
        raise CronError(N_("%(value)s is not a valid %(field)s."), value=token, field=name)
    value = int(token)
    if not low <= value <= high:
        raise CronError(
            N_("%(value)s is out of range for the %(field)s (%(low)d to %(high)d)."),
            value=token,
            field=name,
            low=low,
            high=high,
        )
    return value


def _field(text: str, name: str, low: int, high: int) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            raise CronError(N_("%(value)s is not a valid %(field)s."), value=item, field=name)
        body, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(N_("%(value)s is not a valid %(field)s."), value=item, field=name)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _number(a, name, low, high), _number(b, name, low, high)
            if first > last:
                raise CronError(N_("%(value)s is not a valid %(field)s."), value=item, field=name)
        else:
            first = _number(body, name, low, high)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    if name == "weekday" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values), text == "*"


def parse_cron(expression: str) -> Cron:
    """Read a five-field expression; raises CronError naming what is wrong."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise CronError(
            N_(
                "Write five fields: minute hour day month weekday (e.g. 0 7 * * mon for every "
                "Monday at 07:00)."
            )
        )
    parsed = [_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
    return Cron(
        expression=" ".join(parts),
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=parsed[4][0],
        day_any=parsed[2][1],
        weekday_any=parsed[4][1],
    )


def next_run(expression: str, after: datetime, tz: tzinfo) -> datetime | None:
    return parse_cron(expression).next_after(after, tz)


# --- in words ---------------------------------------------------------------------------------

DAY_NAMES = (
    N_("Sunday"),
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
)


def describe(expression: str, translate: Any) -> str:
    """Common timings in words ("every Monday at 07:00"); others as the expression itself."""
    try:
        cron = parse_cron(expression)
    except CronError:
        return expression
    if len(cron.minutes) != 1 or len(cron.hours) != 1 or len(cron.months) != 12:
        return cron.expression
    at = f"{next(iter(cron.hours)):02d}:{next(iter(cron.minutes)):02d}"
    if cron.day_any and cron.weekday_any:
        return str(translate(N_("every day at %(time)s")) % {"time": at})
    if cron.day_any and len(cron.weekdays) == 1:
        day = translate(DAY_NAMES[next(iter(cron.weekdays))])
        return str(translate(N_("every %(day)s at %(time)s")) % {"day": day, "time": at})
    if cron.day_any and cron.weekdays == frozenset({1, 2, 3, 4, 5}):
        return str(translate(N_("every weekday at %(time)s")) % {"time": at})
    if cron.weekday_any and len(cron.days) == 1:
        day_number = next(iter(cron.days))
        return str(
            translate(N_("on day %(day)d of every month at %(time)s"))
            % {"day": day_number, "time": at}
        )
    return cron.expression
