"""Reads of the ledger that pages and the rest of the app share."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Prefetch, Q, QuerySet, Sum

from keter.accounts.models import Team
from ledger.models import Account, Entry, Hold, Lot, Transaction
from ledger.periods import start_of_day
from ledger.services.plans import team_period


@dataclass(frozen=True)
class TeamBalance:
    available: int
    held: int
    spent_this_period: int  # captured minus refunded since the period started
    period_start: datetime
    period_end: datetime | None


def team_balance(team: Team, *, now: datetime | None = None) -> TeamBalance:
    balances = dict(Account.objects.filter(team=team).values_list("kind", "balance"))
    period = team_period(team, now)
    spent = (
        Entry.objects.filter(
            account__kind=Account.Kind.USAGE,
            transaction__team=team,
            transaction__created_at__gte=period.start,
        ).aggregate(total=Sum("credits"))["total"]
        or 0
    )
    return TeamBalance(
        available=balances.get(Account.Kind.AVAILABLE, 0),
        held=balances.get(Account.Kind.HELD, 0),
        spent_this_period=spent,
        period_start=period.start,
        period_end=period.end,
    )


def active_lots(team: Team) -> list[Lot]:
    """The team's lots that still count, in the order they will be spent."""
    lots = Lot.objects.filter(team=team, status=Lot.Status.ACTIVE, remaining__gt=0)
    return sorted(lots, key=Lot.burn_key)


def expired_lots(team: Team, *, limit: int = 10) -> list[Lot]:
    return list(
        Lot.objects.filter(team=team, status=Lot.Status.EXPIRED).order_by("-expires_at", "-id")[:limit]
    )


def pending_holds(team: Team) -> QuerySet[Hold]:
    return Hold.objects.filter(team=team, status=Hold.Status.PENDING).order_by("-id")


def team_transactions(
    team: Team,
    *,
    kind: str = "",
    reference: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[Transaction]:
    """The team's transactions, newest first, with their entries; dates are whole days, both included."""
    condition = transaction_filter(kind=kind, reference=reference, date_from=date_from, date_to=date_to)
    transactions = Transaction.objects.filter(team=team).filter(condition)
    entries = Entry.objects.select_related("account").order_by("id")
    return (
        transactions.select_related("actor")
        .prefetch_related(Prefetch("entries", queryset=entries))
        .order_by("-id")
    )


def team_available(team: Team) -> int:
    """The team's available credits alone: one query, for pages that show just that figure."""
    balance = Account.objects.filter(team=team, kind=Account.Kind.AVAILABLE).values_list("balance", flat=True)
    return next(iter(balance), 0)


def transaction_filter(
    *,
    kind: str = "",
    reference: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    prefix: str = "",
) -> Q:
    """The credits page's filters as one condition on transactions (or, with `prefix="transaction__"`, on
    their entries): a kind, a piece of reference, whole days in the reporting time zone (both included)."""
    condition = Q()
    if kind:
        condition &= Q(**{f"{prefix}kind": kind})
    if reference:
        condition &= Q(**{f"{prefix}reference__icontains": reference})
    if date_from:
        condition &= Q(**{f"{prefix}created_at__gte": start_of_day(date_from)})
    if date_to:
        condition &= Q(**{f"{prefix}created_at__lt": start_of_day(date_to + timedelta(days=1))})
    return condition
