"""The one helper for time periods. Days, weeks (Monday first) and months are counted in the
program's time zone (``LOYALTY_TIME_ZONE``); every datetime in and out is aware."""

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

LIFETIME_START = date(1970, 1, 1)


@functools.cache
def program_tz() -> ZoneInfo:
    """Kept: an event asks for it about ten times, and each read of a setting runs Python."""
    return ZoneInfo(settings.TIME_ZONE)


@receiver(setting_changed)
def _forget_time_zone(*, setting: str, **kwargs) -> None:
    if setting == "TIME_ZONE":
        program_tz.cache_clear()


def local_date(at: datetime) -> date:
    return at.astimezone(program_tz()).date()


def period_start(period: str, at: datetime) -> date:
    """The first local day of the ``day``/``week``/``month``/``lifetime`` period holding ``at``."""
    day = local_date(at)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "lifetime":
        return LIFETIME_START
    raise ValueError(f"unknown period {period!r}")


def next_period_start(period: str, start: date) -> date | None:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return None


def start_of_day(day: date) -> datetime:
    """The aware instant a local day begins."""
    return datetime.combine(day, time.min, tzinfo=program_tz())


def rolling_window_start(days: int, at: datetime) -> datetime:
    """Start of "the last ``days`` days", today included, in local days."""
    return start_of_day(local_date(at) - timedelta(days=days - 1))


def calendar_year_start(at: datetime) -> datetime:
    return start_of_day(local_date(at).replace(month=1, day=1))


def expiry_at(*, policy: str, n: int, yearly_date: str, earned_at: datetime) -> datetime | None:
    """When points earned at ``earned_at`` expire, in the program's time zone:

    - ``never``: never (None);
    - ``days``: at the end of the N-th local day after the day of earning;
    - ``end_of_month``: at the end of the month N months after the month of earning;
    - ``yearly_date``: at the end of the date MM-DD in the year of earning plus N (a date
      already past at earning moves one more year on).
    """
    if policy == "never":
        return None
    earned = local_date(earned_at)
    if policy == "days":
        return start_of_day(earned + timedelta(days=n + 1))
    if policy == "end_of_month":
        months = earned.year * 12 + earned.month - 1 + n + 1
        return start_of_day(date(months // 12, months % 12 + 1, 1))
    if policy == "yearly_date":
        month, day = (int(part) for part in yearly_date.split("-"))
        target = _valid_date(earned.year + n, month, day)
        if target < earned:
            target = _valid_date(earned.year + n + 1, month, day)
        return start_of_day(target + timedelta(days=1))
    raise ValueError(f"unknown expiry policy {policy!r}")


def _valid_date(year: int, month: int, day: int) -> date:
    # 29 February in a year without one is the 28th.
    while True:
        try:
            return date(year, month, day)
        except ValueError:
            day -= 1
