"""Billing periods: pure date arithmetic (no database), so the plan grant job and the pages agree.

A monthly period starts on the team's billing day (clamped to the month's last day: the 31st is the 28th
in February) at midnight in the reporting time zone, and ends at the next billing date. An annual period
starts on the billing day of the month the team was created in. A one-off plan has one period that
starts when the team was created and never ends.
"""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime | None
    label: str  # YYYY-MM of the start, or "once": part of the plan grant's idempotency key


def billing_date(year: int, month: int, day: int) -> date:
    return date(year, month, max(1, min(day, calendar.monthrange(year, month)[1])))


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def start_of_day(day: date, tz: tzinfo | None = None) -> datetime:
    """Midnight at the start of `day` in the reporting time zone (settings.TIME_ZONE by default)."""
    from django.utils import timezone

    return _midnight(day, tz or timezone.get_current_timezone())


def billing_period(*, cadence: str, billing_day: int, anchor: date, now: datetime, tz: tzinfo) -> Period:
    """The billing period containing `now` for a plan with this cadence ("once", "monthly", "annual")."""
    today = now.astimezone(tz).date()
    if cadence == "once":
        return Period(start=_midnight(anchor, tz), end=None, label="once")
    step = 12 if cadence == "annual" else 1
    year, month = (today.year, anchor.month) if cadence == "annual" else (today.year, today.month)
    if billing_date(year, month, billing_day) > today:
        year, month = _add_months(year, month, -step)
    end_year, end_month = _add_months(year, month, step)
    start = billing_date(year, month, billing_day)
    return Period(
        start=_midnight(start, tz),
        end=_midnight(billing_date(end_year, end_month, billing_day), tz),
        label=f"{start:%Y-%m}",
    )
