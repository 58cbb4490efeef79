"""Usage and cost reports: aggregates in SQL over the jobs (each job's money is its ledger hold)."""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncMonth

from keter.accounts.models import Team, User
from ledger.periods import start_of_day
from planner.models import Job, Project, Scene, VideoModel
from planner.selectors import approved_budget

SETTLED = [Job.State.SUCCEEDED, Job.State.FAILED, Job.State.MODERATED]
DIMENSIONS = {"month": "Month", "project": "Project", "model": "Model", "member": "Member"}
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


@contextmanager
def report_snapshot() -> Iterator[None]:
    """Read a whole report in one transaction: its tables, chart and cost report see the same snapshot.

    On PostgreSQL the transaction also gives its grouping and joins room in memory (a year of a large team's
    jobs, joined to their holds, would otherwise be hashed or sorted on disk): `SET LOCAL` ends with it.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '32MB'")  # a year of one team's jobs, with room
        yield


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


FIGURES = ("takes", "seconds", "captured", "reserved", "wasted", "keepers", "keeper_seconds")


@dataclass(frozen=True)
class UsageReport:
    """Every usage table of the page, their total and the chart, from one snapshot: they always agree."""

    filters: ReportFilters
    by: dict[str, list[UsageRow]]  # dimension -> its rows, in label order
    total: UsageRow
    months: list[str]  # the chart's categories
    series: list[tuple[str, list[int]]]  # (model, credits captured each month)
    project_ids: frozenset[int] = frozenset()  # the projects with takes in the report

    @property
    def covers_the_whole_period(self) -> bool:
        """Whether the report counts every take of its period (no model, member or quality filter)."""
        return not (self.filters.model_slug or self.filters.member_id or self.filters.quality)


def usage_report(team: Team, filters: ReportFilters) -> UsageReport:
    """Usage by month, project, model and member, the total and the chart: one grouped query (and one
    small one for the names of each).

    The jobs are summed in SQL at the finest grain the page shows (month × project × model × member: a few
    thousand groups for a year of a large team) and those sums are added up here for each table, rather
    than scanning the jobs once per table. The grain is grouped by ids only: names in the grouping key
    make PostgreSQL sort every job row with them.
    """
    grains = list(
        report_jobs(team, filters)
        .annotate(month=TruncMonth("finished_at"))
        .values("month", "project_id", "video_model_id", "launched_by_id")
        .annotate(**_usage_aggregates())
        .order_by()
    )
    names = {
        "project_id": _names(Project.objects, "name", {g["project_id"] for g in grains}),
        "video_model_id": _names(VideoModel.objects, "name", {g["video_model_id"] for g in grains}),
        "launched_by_id": _names(User.objects, "email", {g["launched_by_id"] for g in grains}),
    }
    keys = {"month": "month", "project": "project_id", "model": "video_model_id", "member": "launched_by_id"}
    sums: dict[str, dict] = {dimension: {} for dimension in keys}
    total = dict.fromkeys(FIGURES, 0)
    chart: dict[tuple[str, str], int] = {}
    for grain in grains:
        for dimension, column in keys.items():
            value = grain[column]
            # Rows sort by label (then id, for two projects of the same name); months by date.
            key = value if column == "month" else (names[column][value], value)
            figures = sums[dimension].setdefault(key, dict.fromkeys(FIGURES, 0))
            for name in FIGURES:
                figures[name] += grain[name]
        for name in FIGURES:
            total[name] += grain[name]
        cell = (grain["month"].strftime("%Y-%m"), names["video_model_id"][grain["video_model_id"]])
        chart[cell] = chart.get(cell, 0) + grain["captured"]
    by = {
        dimension: [_row(key if isinstance(key, date) else key[0], groups[key]) for key in sorted(groups)]
        for dimension, groups in sums.items()
    }
    months = sorted({month for month, _ in chart})
    series = [
        (model, [chart.get((month, model), 0) for month in months])
        for model in sorted({model for _, model in chart})
    ]
    return UsageReport(
        filters=filters,
        by=by,
        total=_row("Total", total),
        months=months,
        series=series,
        project_ids=frozenset(g["project_id"] for g in grains),
    )


def _names(objects, field: str, ids: set) -> dict:
    return dict(objects.filter(id__in=ids).values_list("id", field)) if ids else {}


def usage_by(team: Team, filters: ReportFilters, dimension: str) -> list[UsageRow]:
    """Usage grouped by month, project, model or member."""
    return usage_report(team, filters).by[dimension]


def usage_total(team: Team, filters: ReportFilters) -> UsageRow:
    return usage_report(team, filters).total


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
    report = usage_report(team, filters)
    return report.months, report.series


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


def cost_report(
    team: Team,
    *,
    project_id: int | None = None,
    filters: ReportFilters | None = None,
    usage: UsageReport | None = None,
) -> list[CostRow]:
    """Every approved project's budget against actual, committed and the expected cost of what is left.

    With `filters`, the projects of their period: those still open, and those with takes finished in the
    period (a project's figures are always to date); the page's `usage` of the same period, when it counts
    every take, already knows those. Estimate to complete: per scene, the expected credits of the keepers
    still missing, net of the takes already queued or running:
    ceil(max(0, missing / p − active) × credits per take).
    """
    projects = team.projects.exclude(original_budget=None).order_by("name", "id")
    if project_id:
        projects = projects.filter(id=project_id)
    if filters is not None:
        period = ReportFilters(date_from=filters.date_from, date_to=filters.date_to)
        if usage is not None and usage.covers_the_whole_period and usage.filters == filters:
            worked_on = usage.project_ids
        else:
            worked_on = report_jobs(team, period).order_by().values("project_id")
        closed = [Project.Status.DELIVERED, Project.Status.ARCHIVED]
        projects = projects.filter(~Q(status__in=closed) | Q(id__in=worked_on))
    projects = list(projects)
    # One pass over the projects' jobs, grouped by scene (driven by the jobs, so PostgreSQL can split the
    # scan between workers), then the scenes' own figures: deleted scenes' takes cost what they cost, and
    # only the live scenes still need anything.
    active = Q(state__in=Job.ACTIVE_STATES)
    jobs = {
        r["scene_id"]: r
        for r in Job.objects.filter(project__in=projects)
        .values("scene_id")
        .annotate(
            keepers=Count("id", filter=Q(verdict=Job.Verdict.KEEPER)),
            active=Count("id", filter=active),
            actual=Coalesce(Sum(Coalesce(F("hold__captured"), 0) - Coalesce(F("hold__refunded"), 0)), 0),
            committed=Coalesce(Sum("credits", filter=active), 0),
        )
        .order_by()
    }
    scenes = Scene.objects.filter(project__in=projects).values(
        "id", "project_id", "variants", "success_rate", "credits_per_take", "deleted_at"
    )
    none = {"keepers": 0, "active": 0, "actual": 0, "committed": 0}
    money: dict[int, dict] = {}
    to_complete: dict[int, int] = {}
    for s in scenes:
        figures = jobs.get(s["id"], none)
        m = money.setdefault(s["project_id"], {"actual": 0, "committed": 0})
        m["actual"] += figures["actual"]
        m["committed"] += figures["committed"]
        missing = max(s["variants"] - figures["keepers"], 0)
        if s["deleted_at"] is not None or not missing or not s["success_rate"]:
            continue
        takes_left = max(missing / float(s["success_rate"]) - figures["active"], 0)
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
