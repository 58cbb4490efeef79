"""Alerts on money: a project's spend crossing 50/80/100% of its budget, a team's balance running low."""

from django.urls import reverse

from keter.accounts.models import Team
from keter.accounts.roles import Role
from ledger.models import Lot
from ledger.selectors import team_available
from planner.models import Project
from planner.selectors import ProjectSpend, approved_budget, project_spend
from planner.services.alerts import notify, notify_leads, team_people

THRESHOLDS = (50, 80, 100)


def budget_usage_check(*, project: Project, spend: ProjectSpend | None = None) -> list[int]:
    """Fire each threshold the project's actual + committed credits have reached, once per budget version.
    `spend` is the project's spend if the caller has it at hand (read under the project's lock)."""
    budget = approved_budget(project)
    if not budget.final:
        return []
    spend = spend or project_spend(project)
    used = spend.actual + spend.committed
    fired = []
    for threshold in THRESHOLDS:
        if used * 100 >= threshold * budget.final:
            created = notify_leads(
                project=project,
                dedupe_key=f"budget:{project.id}:v{budget.version_number}:{threshold}",
                subject=f"{project.name} has used {threshold}% of its budget",
                body=f"{used:,} of {budget.final:,} credits spent or committed "
                f"({spend.actual:,} spent, {spend.committed:,} committed).",
                url=reverse("planner:project", args=[project.team.slug, project.id]),
            )
            if created:
                fired.append(threshold)
    return fired


def balance_alert_check(*, team: Team) -> bool:
    """Tell the owners and leads once when available credits fall below the owner's threshold.

    The alert can fire again after the next grant or top-up (a new lot), not on every posting below it.
    """
    threshold = team.low_balance_threshold
    if not threshold:
        return False
    available = team_available(team)
    if available >= threshold:
        return False
    latest_lot = Lot.objects.filter(team=team).order_by("-id").values_list("id", flat=True).first() or 0
    created = notify(
        team=team,
        recipients=team_people(team, Role.OWNER, Role.LEAD),
        dedupe_key=f"low-balance:{team.id}:{threshold}:{latest_lot}",
        subject=f"{team.name} is low on credits: {available:,} available",
        body=f"The alert threshold is {threshold:,} credits. Top up or expect approvals to be refused.",
        url=reverse("ledger:credits", args=[team.slug]),
    )
    return bool(created)
