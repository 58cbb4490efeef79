from django.core.management import call_command

from keter.accounts.models import Team
from ledger.checks import ledger_check
from ledger.models import Lot, Transaction
from ledger.selectors import team_balance


def test_the_demo_gives_each_team_its_plan_credits_and_northwind_a_top_up(db):
    call_command("seed_demo", quiet_logins=True, verbosity=0)
    call_command("seed_demo", quiet_logins=True, verbosity=0)  # idempotent, thanks to the keys
    northwind, harbor = Team.objects.get(slug="northwind"), Team.objects.get(slug="blue-harbor")
    # The planner's demo project reserves and spends some of Northwind's credits; none are lost.
    balance = team_balance(northwind)
    assert balance.available + balance.held + balance.spent_this_period == 2_250 + 5_000
    assert team_balance(harbor).available == 625
    assert set(Lot.objects.filter(team=northwind).values_list("category", flat=True)) == {
        "promotional",
        "paid",
    }
    assert Transaction.objects.filter(kind__in=["grant", "top_up"]).count() == 3
    assert ledger_check().ok
