"""Plan credits: each team's plan grants credits once, monthly or yearly, idempotent per team and period."""

import logging
from datetime import datetime

from django.utils import timezone

from keter.accounts.models import Plan, Team
from ledger.errors import IdempotencyConflict
from ledger.models import Lot, Operation
from ledger.periods import Period, billing_period
from ledger.services.lots import ledger_grant

log = logging.getLogger(__name__)


def team_period(team: Team, now: datetime | None = None) -> Period:
    """The team's current billing period under its plan's cadence."""
    tz = timezone.get_current_timezone()
    return billing_period(
        cadence=team.plan.grant_cadence,
        billing_day=team.billing_day,
        anchor=team.created_at.astimezone(tz).date(),
        now=now or timezone.now(),
        tz=tz,
    )


def plan_grant_key(team: Team, period: Period) -> str:
    return f"grant:plan:{team.pk}:{period.label}"


def ledger_grant_plan_credits(*, now: datetime | None = None, teams=None) -> int:
    """Grant every active team its plan credits for the period containing `now`, once per period.

    Plan credits expire at the next billing date (unless the plan's credits never expire); purchased
    credits are untouched. The key `grant:plan:<team id>:<YYYY-MM>` makes a second run a no-op; a team
    whose plan changed after its grant keeps that grant (an upgrade's difference is a separate grant).
    Returns how many grants were made.
    """
    now = now or timezone.now()
    if teams is None:
        teams = Team.objects.filter(is_archived=False).select_related("plan")
    # A plan without monthly credits has nothing to grant.
    due = [(team, team_period(team, now)) for team in teams if team.plan.monthly_credits > 0]
    keys = [plan_grant_key(team, period) for team, period in due]
    granted_before = set(Operation.objects.filter(key__in=keys).values_list("key", flat=True))
    granted = 0
    for (team, period), key in zip(due, keys, strict=True):
        if key in granted_before:
            continue
        plan = team.plan
        expires = plan.rollover != Plan.Rollover.NEVER_EXPIRE
        try:
            ledger_grant(
                team=team,
                credits=plan.monthly_credits,
                key=key,
                reference=f"plan:{plan.slug}:{period.label}",
                effective_at=period.start,
                expires_at=period.end if expires else None,
                category=Lot.Category.PROMOTIONAL,
                memo=f"{plan.name} plan credits for {period.label}",
            )
        except IdempotencyConflict:
            log.warning("Plan grant %s was made concurrently with other figures; left as it is", key)
            continue
        granted += 1
    return granted
