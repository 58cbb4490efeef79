from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from keter.accounts.models import Plan, Team
from ledger.models import Lot, Operation
from ledger.periods import billing_period
from ledger.services import ledger_grant_plan_credits, ledger_top_up

UTC = ZoneInfo("UTC")


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=UTC)


def monthly(now, billing_day=1):
    return billing_period(
        cadence="monthly", billing_day=billing_day, anchor=date(2026, 1, 1), now=now, tz=UTC
    )


def test_a_monthly_period_runs_from_one_billing_date_to_the_next():
    period = monthly(at(2026, 11, 23), billing_day=15)
    assert (period.start, period.end, period.label) == (at(2026, 11, 15, 0), at(2026, 12, 15, 0), "2026-11")
    before = monthly(at(2026, 11, 14), billing_day=15)
    assert (before.start, before.end, before.label) == (at(2026, 10, 15, 0), at(2026, 11, 15, 0), "2026-10")


def test_a_billing_day_past_the_end_of_the_month_falls_on_its_last_day():
    period = monthly(at(2027, 2, 28), billing_day=31)
    assert (period.start, period.end) == (at(2027, 2, 28, 0), at(2027, 3, 31, 0))
    january = monthly(at(2027, 2, 27), billing_day=31)
    assert (january.start, january.end, january.label) == (at(2027, 1, 31, 0), at(2027, 2, 28, 0), "2027-01")


def test_a_period_crosses_the_year_boundary():
    period = monthly(at(2027, 1, 3), billing_day=5)
    assert (period.start, period.end, period.label) == (at(2026, 12, 5, 0), at(2027, 1, 5, 0), "2026-12")


def test_an_annual_period_starts_on_the_anniversary_month():
    period = billing_period(
        cadence="annual", billing_day=1, anchor=date(2025, 3, 9), now=at(2026, 2, 1), tz=UTC
    )
    assert (period.start, period.end, period.label) == (at(2025, 3, 1, 0), at(2026, 3, 1, 0), "2025-03")


def test_a_one_off_plan_has_a_single_period():
    period = billing_period(
        cadence="once", billing_day=1, anchor=date(2026, 5, 2), now=at(2026, 11, 1), tz=UTC
    )
    assert (period.start, period.end, period.label) == (at(2026, 5, 2, 0), None, "once")


@pytest.fixture
def teams(plans):
    def make(slug, plan, billing_day=1):
        return Team.objects.create(name=slug, slug=slug, plan=plans[plan], billing_day=billing_day)

    return make


def test_it_grants_each_team_its_plan_credits_once_per_period(teams, balance):
    pro = teams("pro-team", "pro", billing_day=10)
    standard = teams("std-team", "standard")
    now = at(2026, 11, 23)
    assert ledger_grant_plan_credits(now=now) == 2
    assert ledger_grant_plan_credits(now=now) == 0
    assert balance(pro)[0] == 2_250 and balance(standard)[0] == 625
    lot = Lot.objects.get(team=pro)
    assert (lot.effective_at, lot.expires_at, lot.category) == (
        at(2026, 11, 10, 0),
        at(2026, 12, 10, 0),
        "promotional",
    )
    assert Operation.objects.filter(key=f"grant:plan:{pro.pk}:2026-11").exists()


def test_plan_credits_expire_at_the_next_billing_date_and_purchases_do_not(teams, balance):
    from ledger.services import ledger_expire_lots

    pro = teams("pro-team", "pro")
    ledger_grant_plan_credits(now=at(2026, 11, 23))
    ledger_top_up(team=pro, credits=1_000, key="topup:pro")
    ledger_expire_lots(now=at(2026, 12, 1, 0))
    ledger_grant_plan_credits(now=at(2026, 12, 1, 0))
    assert balance(pro)[0] == 1_000 + 2_250  # November's credits reset, December's arrived
    assert Lot.objects.filter(team=pro, status="expired").count() == 1


def test_a_free_plan_grants_once_and_its_credits_never_expire(teams, balance):
    free = teams("free-team", "free")
    assert ledger_grant_plan_credits(now=at(2026, 11, 23)) == 1
    assert ledger_grant_plan_credits(now=at(2027, 3, 23)) == 0
    lot = Lot.objects.get(team=free)
    assert (lot.credits, lot.expires_at) == (125, None)


def test_an_annual_plan_grants_a_pool_that_expires_after_a_year(teams, plans):
    enterprise = teams("big-team", "enterprise")
    Team.objects.filter(pk=enterprise.pk).update(created_at=at(2026, 4, 20))
    ledger_grant_plan_credits(now=at(2026, 11, 23))
    lot = Lot.objects.get(team=enterprise)
    assert (lot.credits, lot.effective_at, lot.expires_at) == (100_000, at(2026, 4, 1, 0), at(2027, 4, 1, 0))
    assert plans["enterprise"].rollover == Plan.Rollover.NO_ROLLOVER


def test_archived_teams_and_plans_without_credits_get_nothing(teams, plans):
    archived = teams("old-team", "pro")
    Team.objects.filter(pk=archived.pk).update(is_archived=True)
    Plan.objects.filter(slug="standard").update(monthly_credits=0)
    teams("std-team", "standard")
    assert ledger_grant_plan_credits(now=at(2026, 11, 23)) == 0


def test_a_plan_change_after_the_grant_leaves_the_period_as_granted(teams, plans, balance):
    team = teams("std-team", "standard")
    ledger_grant_plan_credits(now=at(2026, 11, 23))
    team.plan = plans["pro"]
    team.save()
    assert ledger_grant_plan_credits(now=at(2026, 11, 24)) == 0  # no conflict, no second grant
    assert balance(team)[0] == 625
