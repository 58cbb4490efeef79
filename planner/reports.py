"""Usage and cost reports: aggregates in SQL over the jobs (each job's money is its ledger hold)."""

import math
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, IntegerField, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncMonth

from keter.accounts.models import Team
from ledger.periods import start_of_day
from planner.models import Job, Project, Scene
from planner.selectors import approved_budget

SETTLED = [Job.State.SUCCEEDED, Job.State.FAILED, Job.State.MODERATED]
DIMENSIONS = {
    "month": ("Month", TruncMonth("finished_at")),
    "project": ("Project", F("project__name")),
    "model": ("Model", F("video_model__name")),
    "member": ("Member", F("launched_by__email")),
}
USAGE_COLUMNS = [
    "takes",
    "seconds generated",
    "credits captured",
    "credits returned",
    "credits on failed or moderated takes",
    "keepers",
    "credits per usable take",
    "credits per usable second",
]


@dataclass(frozen=True)
class ReportFilters:
    date_from: date
    date_to: date
    project_id: int | None = None
    model_slug: str = ""
    member_id: int | None = None
    quality: str = ""


def report_jobs(team: Team, filters: ReportFilters) -> QuerySet:
    """The team's finished jobs in the period (by the day they finished), with the filters applied."""
    from datetime import timedelta

    jobs = Job.objects.filter(
        team=team,
        state__in=[*SETTLED, Job.State.CANCELLED],
        finished_at__gte=start_of_day(filters.date_from),
        finished_at__lt=start_of_day(filters.date_to + timedelta(days=1)),
    )
    if filters.project_id:
        jobs = jobs.filter(project_id=filters.project_id)
    if filters.model_slug:
        jobs = jobs.filter(video_model__slug=filters.model_slug)
    if filters.member_id:
        jobs = jobs.filter(launched_by_id=filters.member_id)
    if filters.quality:
        jobs = jobs.filter(params__quality=filters.quality)
    return jobs


@dataclass(frozen=True)
class UsageRow:
    label: str
    takes: int
    seconds: int
    captured: int
    returned: int
    wasted: int
    keepers: int
    keeper_seconds: int

    @property
    def per_usable_take(self) -> int | None:
        return math.ceil(self.captured / self.keepers) if self.keepers else None

    @property
    def per_usable_second(self) -> float | None:
        return round(self.captured / self.keeper_seconds, 2) if self.keeper_seconds else None

    def cells(self) -> list:
        return [
            self.label, self.takes, self.seconds, self.captured, self.returned, self.wasted, self.keepers,
            self.per_usable_take, self.per_usable_second,
        ]  # fmt: skip


def _usage_aggregates() -> dict:
    seconds = Cast(KT("params__seconds"), IntegerField())
    settled = Q(state__in=SETTLED)
    succeeded = Q(state=Job.State.SUCCEEDED)
    keeper = Q(verdict=Job.Verdict.KEEPER)
    captured = Coalesce(F("hold__captured"), 0) - Coalesce(F("hold__refunded"), 0)
    return {
        "takes": Count("id", filter=settled),
        "seconds": Coalesce(Sum(seconds, filter=succeeded), 0),
        "captured": Coalesce(Sum(captured), 0),
        "reserved": Coalesce(Sum("credits"), 0),
        "wasted": Coalesce(Sum(captured, filter=Q(state__in=[Job.State.FAILED, Job.State.MODERATED])), 0),
        "keepers": Count("id", filter=keeper),
        "keeper_seconds": Coalesce(Sum(seconds, filter=keeper), 0),
    }


def usage_by(team: Team, filters: ReportFilters, dimension: str) -> list[UsageRow]:
    """Usage grouped by month, project, model or member: one query."""
    _, key = DIMENSIONS[dimension]
    rows = (
        report_jobs(team, filters)
        .annotate(group=key)
        .values("group")
        .annotate(**_usage_aggregates())
        .order_by("group")
    )
    return [_row(r["group"], r) for r in rows]


def usage_total(team: Team, filters: ReportFilters) -> UsageRow:
    return _row("Total", report_jobs(team, filters).aggregate(**_usage_aggregates()))


def _row(group, r: dict) -> UsageRow:
    label = group.strftime("%Y-%m") if hasattr(group, "strftime") else str(group or "—")
    return UsageRow(
        label=label,
        takes=r["takes"],
        seconds=r["seconds"],
        captured=r["captured"],
        returned=r["reserved"] - r["captured"],
        wasted=r["wasted"],
        keepers=r["keepers"],
        keeper_seconds=r["keeper_seconds"],
    )


def usage_by_month_and_model(
    team: Team, filters: ReportFilters
) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Credits captured per month, stacked by model: the chart's categories and series."""
    captured = Coalesce(F("hold__captured"), 0) - Coalesce(F("hold__refunded"), 0)
    rows = (
        report_jobs(team, filters)
        .annotate(month=TruncMonth("finished_at"))
        .values("month", "video_model__name")
        .annotate(credits=Coalesce(Sum(captured), 0))
        .order_by("month", "video_model__name")
    )
    months = sorted({r["month"].strftime("%Y-%m") for r in rows if r["month"]})
    by_model: dict[str, list[int]] = {}
    for r in rows:
        if r["month"] is None:
            continue
        values = by_model.setdefault(r["video_model__name"], [0] * len(months))
        values[months.index(r["month"].strftime("%Y-%m"))] += r["credits"]
    return months, sorted(by_model.items())


@dataclass(frozen=True)
class CostRow:
    """A project's cost report, in the columns a production accountant expects."""

    project: Project
    original: int | None
    change_orders: int
    final: int
    actual: int
    committed: int
    to_complete: int

    @property
    def estimated_final(self) -> int:
        return self.actual + self.committed + self.to_complete

    @property
    def variance(self) -> int:
        """Positive: under budget by that much; negative: over."""
        return self.final - self.estimated_final

    def cells(self) -> list:
        return [
            self.project.name, self.original, self.change_orders, self.final, self.actual, self.committed,
            self.to_complete, self.estimated_final, self.variance,
        ]  # fmt: skip


COST_COLUMNS = [
    "project", "original budget", "approved change orders", "final budget", "actual to date", "committed",
    "estimate to complete", "estimated final cost", "variance",
]  # fmt: skip


def cost_report(team: Team, *, project_id: int | None = None) -> list[CostRow]:
    """Every approved project's budget against actual, committed and the expected cost of what is left.

    Estimate to complete: per scene, the expected credits of the keepers still missing, net of the takes
    already queued or running: ceil(max(0, missing / p − active) × credits per take).
    """
    projects = team.projects.exclude(original_budget=None).order_by("name")
    if project_id:
        projects = projects.filter(id=project_id)
    projects = list(projects)
    money = {
        r["project_id"]: r
        for r in Job.objects.filter(project__in=projects)
        .values("project_id")
        .annotate(
            actual=Coalesce(Sum(Coalesce(F("hold__captured"), 0) - Coalesce(F("hold__refunded"), 0)), 0),
            committed=Coalesce(Sum("credits", filter=Q(state__in=Job.ACTIVE_STATES)), 0),
        )
    }
    scenes = (
        Scene.objects.filter(project__in=projects, deleted_at__isnull=True)
        .annotate(
            keepers=Count("jobs", filter=Q(jobs__verdict=Job.Verdict.KEEPER)),
            active=Count("jobs", filter=Q(jobs__state__in=Job.ACTIVE_STATES)),
        )
        .values("project_id", "variants", "success_rate", "credits_per_take", "keepers", "active")
    )
    to_complete: dict[int, int] = {}
    for s in scenes:
        missing = max(s["variants"] - s["keepers"], 0)
        if not missing or not s["success_rate"]:
            continue
        takes_left = max(missing / float(s["success_rate"]) - s["active"], 0)
        to_complete[s["project_id"]] = to_complete.get(s["project_id"], 0) + math.ceil(
            takes_left * s["credits_per_take"]
        )
    rows = []
    for project in projects:
        budget = approved_budget(project)
        m = money.get(project.id, {"actual": 0, "committed": 0})
        rows.append(
            CostRow(
                project=project,
                original=budget.original,
                change_orders=budget.change_orders,
                final=budget.final,
                actual=m["actual"],
                committed=m["committed"],
                to_complete=to_complete.get(project.id, 0),
            )
        )
    return rows
