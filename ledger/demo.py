"""Demo credits for the demo teams (idempotent: every operation has a fixed key)."""

from keter.accounts.models import Team
from ledger.services import ledger_grant_plan_credits, ledger_top_up

DEMO_TOP_UPS = {"northwind": 5_000}


def seed_ledger(teams: list[Team]) -> None:
    """Each team gets its plan grant for the current period; Northwind Studio also a paid top-up."""
    ledger_grant_plan_credits(teams=teams)
    for team in teams:
        credits = DEMO_TOP_UPS.get(team.slug)
        if credits:
            ledger_top_up(
                team=team, credits=credits, key=f"demo:top-up:{team.slug}", reference="demo purchase"
            )
