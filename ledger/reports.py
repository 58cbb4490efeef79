"""Finance reads of the ledger: the register (every entry as a row), balance over time, and the runway.

These read only, and stay fast on a large ledger (a million entries): the register streams tuples, never
model instances, in constant memory; balance over time takes one row per day from the entries'
balance-after chain; the burn rate is one sum; date ranges become id ranges (see `_first_ids_since`).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import CharField, Func, Max, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from keter.accounts.models import Team
from ledger.models import Account, Entry, Transaction
from ledger.periods import start_of_day
from ledger.selectors import team_available, transaction_filter
from ledger.services._core import system_account_ids
from ledger.services.plans import team_period

REGISTER_COLUMNS = [
    "date", "transaction id", "kind", "reference", "memo", "account", "credits", "balance after", "actor",
]  # fmt: skip
REGISTER_FIELDS = [
    "transaction__created_at", "transaction_id", "transaction__kind", "transaction__reference",
    "transaction__memo", "account__kind", "credits", "balance_after", "transaction__actor__email",
]  # fmt: skip
REGISTER_TEXT_COLUMNS = [3, 4, 8]  # reference, memo, actor: the free text a spreadsheet could run
CHUNK_ROWS = 5_000
BURN_DAYS = 30


def register_entries(team: Team, **filters):
    """The team's entries that pass the filters, in ledger order, as `REGISTER_FIELDS` tuples."""
    return (
        Entry.objects.filter(transaction__team=team)
        .filter(transaction_filter(prefix="transaction__", **filters))
        .order_by("transaction_id", "id")
        .values_list(*REGISTER_FIELDS)
    )


class LocalMomentText(Func):
    """A moment as "YYYY-MM-DD HH:MM:SS" in the reporting time zone, formatted by PostgreSQL."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        zone = timezone.get_current_timezone_name()
        return f"to_char({sql} AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI:SS')", (*params, zone)


def register_rows(team: Team, *, text_dates: bool = True, **filters) -> Iterator[tuple]:
    """Every entry of the team's filtered transactions as a row of `REGISTER_COLUMNS`, streamed.

    The date is the transaction's moment in the reporting time zone: text ("2026-03-01 14:05:09") for CSV,
    a naive local datetime for spreadsheets (`text_dates=False`). Credits and balances are exact integers;
    the balance after is blank on system accounts, which keep no running balance. Iterate inside
    `keter.exports.in_snapshot` (one transaction, one snapshot).
    """
    entries = register_entries(team, **filters)
    if text_dates and connection.vendor == "postgresql":
        yield from _streamed_from_postgres(entries)
        return
    tz = timezone.get_current_timezone()
    last_moment, last_value = None, None
    for row in entries.iterator(chunk_size=CHUNK_ROWS):
        moment = row[0]
        if moment != last_moment:  # the 2-3 entries of a transaction share its moment: convert it once
            local = timezone.localtime(moment, tz)
            last_moment = moment
            last_value = local.isoformat(" ", "seconds")[:19] if text_dates else local.replace(tzinfo=None)
        yield (last_value, *row[1:])


def _streamed_from_postgres(entries) -> Iterator[tuple]:
    """The register's rows straight from PostgreSQL, which also formats the dates.

    For a million rows the time goes into per-row Python, so this path has none of it: the query is the
    ORM's (same filters, same order), but the rows are read with psycopg's streaming mode, in chunks, while
    the server keeps producing the next ones, and they arrive as final tuples (Django would parse every
    timestamp with a regular expression, then we would format it again).
    """
    formatted = entries.annotate(moment_text=LocalMomentText("transaction__created_at")).values_list(
        "moment_text", *REGISTER_FIELDS[1:]
    )
    sql, params = formatted.query.sql_with_params()
    with connection.cursor() as cursor:
        yield from cursor.cursor.stream(sql, params, size=CHUNK_ROWS)


@dataclass(frozen=True)
class DayBalance:
    day: date
    available: int


def _first_ids_since(team: Team, since: datetime) -> tuple[int, int] | None:
    """The id of the team's first transaction at or after `since`, and of that transaction's first entry.

    A team's operations are posted one at a time under its lock, which also stamps their moment, so its
    transactions and entries get ids in the order of their moments: a date range is an id range, which
    the primary keys and the (account, id) chain index can use. The planner cannot see that from a date
    condition on a joined table, and would scan the whole ledger instead.
    """
    first_txn = (
        Transaction.objects.filter(team=team, created_at__gte=since)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    if first_txn is None:
        return None
    first_entry = Entry.objects.filter(transaction_id=first_txn).order_by("id").values_list("id", flat=True)
    return first_txn, first_entry.first()


def daily_balances(team: Team, *, date_from: date, date_to: date) -> list[DayBalance]:
    """The team's available balance at the end of each day from `date_from` to `date_to` (at most today).

    Read from the balance-after chain: the last entry of each day that has entries (one grouped query over
    the range), and the last entry before the range for the opening balance; a day without entries carries
    the balance before it.
    """
    today = timezone.localdate()
    date_to = min(date_to, today)
    if date_from > date_to:
        return []
    tz = timezone.get_current_timezone()
    start, end = start_of_day(date_from), start_of_day(date_to + timedelta(days=1))
    account = (
        Account.objects.filter(team=team, kind=Account.Kind.AVAILABLE).values_list("id", flat=True).first()
    )
    chain = Entry.objects.filter(account_id=account)
    first = _first_ids_since(team, start)
    closing: dict[date, int] = {}
    if first is not None:
        last_of_each_day = (
            chain.filter(id__gte=first[1], transaction__in=Transaction.objects.filter(id__gte=first[0]))
            .filter(transaction__created_at__lt=end)
            .annotate(day=TruncDate("transaction__created_at", tzinfo=tz))
            .values("day")
            .annotate(last=Max("id"))
            .values("last")
        )
        closing = dict(
            Entry.objects.filter(id__in=Subquery(last_of_each_day))
            .annotate(day=TruncDate("transaction__created_at", tzinfo=tz))
            .values_list("day", "balance_after")
        )
        chain = chain.filter(id__lt=first[1])
    # The chain's last link before the range (its entries all come before the range's first one).
    opening = chain.order_by("-id").values_list("balance_after", flat=True).first()
    balance = opening or 0
    days = []
    day = date_from
    while day <= date_to:
        balance = closing.get(day, balance)
        days.append(DayBalance(day, balance))
        day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class Runway:
    available: int
    spent: int  # captured minus refunded over the last BURN_DAYS days
    burn_per_day: Decimal  # spent / BURN_DAYS, to the cent of a credit
    days_left: int | None  # whole days until available reaches zero at that pace; None when nothing burns
    runs_out_on: date | None
    next_grant_on: date | None  # when the plan's next credits arrive; None for a one-off plan
    next_grant_credits: int

    @property
    def burn_days(self) -> int:
        return BURN_DAYS


def runway(team: Team, *, now: datetime | None = None) -> Runway:
    """How long the available credits last at the trailing 30-day burn, and when the next grant comes."""
    now = now or timezone.now()
    available = team_available(team)
    first = _first_ids_since(team, now - timedelta(days=BURN_DAYS))
    spent = 0
    if first is not None:
        window = Transaction.objects.filter(team=team, id__gte=first[0], created_at__lte=now)
        usage = Entry.objects.filter(
            account_id=system_account_ids()[Account.Kind.USAGE],
            transaction_id__gte=first[0],  # the same bound on both sides, for the planner
            transaction__in=window,
        )
        spent = usage.aggregate(total=Sum("credits"))["total"] or 0
    burn = (Decimal(spent) / BURN_DAYS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    days_left = available * BURN_DAYS // spent if spent > 0 else None
    today = timezone.localdate(now)
    plan = team.plan
    next_grant_on = None
    if plan.monthly_credits > 0 and not team.is_archived:
        period_end = team_period(team, now).end
        next_grant_on = timezone.localdate(period_end) if period_end else None
    return Runway(
        available=available,
        spent=spent,
        burn_per_day=burn,
        days_left=days_left,
        runs_out_on=today + timedelta(days=days_left) if days_left is not None else None,
        next_grant_on=next_grant_on,
        next_grant_credits=plan.monthly_credits if next_grant_on else 0,
    )
