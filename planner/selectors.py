"""Reads that grow: project totals and lists, each a fixed number of queries whatever the size."""

from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from keter import sql
from keter.accounts.models import Team
from planner import costing
from planner.models import Job, Project, Scene
from planner.queue_selectors import spent_on_take

LIVE = Q(deleted_at__isnull=True)


@dataclass(frozen=True)
class ProjectTotals:
    scenes: int
    invalid_scenes: int
    expected_credits: int
    planned_credits: int
    contingency_credits: int
    total_credits: int
    contingency_percent: object
    approved_budget: int | None = None
    available_credits: int | None = None

    @property
    def budget_left(self) -> int | None:
        return None if self.approved_budget is None else self.approved_budget - self.total_credits

    @property
    def over_budget_by(self) -> int:
        return max(0, -(self.budget_left or 0))

    @property
    def needs_change_order(self) -> bool:
        """Edits after approval pushed the plan past the approved budget."""
        return self.approved_budget is not None and self.total_credits > self.approved_budget


def _sums(prefix: str = "") -> dict:
    live = Q(**{f"{prefix}deleted_at__isnull": True})
    valid = live & Q(**{f"{prefix}estimate_error": ""}) & Q(**{f"{prefix}invalid_input": {}})
    return {
        "n_scenes": Count(f"{prefix}id", filter=live),
        "n_invalid": Count(f"{prefix}id", filter=live & ~valid),
        "expected": Coalesce(Sum(f"{prefix}expected_credits", filter=valid), 0),
        "planned": Coalesce(Sum(f"{prefix}planned_credits", filter=valid), 0),
    }


def _totals(project: Project, sums: dict) -> ProjectTotals:
    figures = costing.totals_from_sums(
        expected_credits=sums["expected"],
        planned_credits=sums["planned"],
        contingency_percent=project.contingency_percent,
    )
    return ProjectTotals(
        scenes=sums["n_scenes"],
        invalid_scenes=sums["n_invalid"],
        expected_credits=figures.expected_credits,
        planned_credits=figures.planned_credits,
        contingency_credits=figures.contingency_credits,
        total_credits=figures.total_credits,
        contingency_percent=project.contingency_percent,
    )


def project_totals(project: Project) -> ProjectTotals:
    """The project's figures from the scenes' saved estimates: one query.

    Every scene edit (each keystroke in the editor) asks for these, and through the ORM the aggregate
    cost more to build than to run: it is one plain statement, built once from the model's metadata."""
    nothing_refused = Scene._meta.get_field("invalid_input").get_db_prep_value({}, connection)
    with connection.cursor() as cursor:
        cursor.execute(_totals_sql(), [nothing_refused, project.id])
        n_scenes, n_invalid, expected, planned = cursor.fetchone()
    # SUM is NULL over no rows, and a decimal for big integers on PostgreSQL.
    sums = {"n_scenes": n_scenes, "n_invalid": int(n_invalid or 0)}
    sums |= {"expected": int(expected or 0), "planned": int(planned or 0)}
    return _totals(project, sums)


@cache
def _totals_sql() -> str:
    """The live scenes counted, and the estimates of the valid ones summed (valid: no engine refusal and
    nothing refused in `invalid_input`, stored as `{}`)."""
    column = {f.name: connection.ops.quote_name(f.column) for f in Scene._meta.concrete_fields}
    return (
        "SELECT COUNT(*), SUM(1 - v), SUM(v * expected), SUM(v * planned) FROM ("
        f"SELECT CASE WHEN {column['estimate_error']} = '' AND {column['invalid_input']} = %s THEN 1 ELSE 0"
        f" END AS v, {column['expected_credits']} AS expected, {column['planned_credits']} AS planned"
        f" FROM {Scene._meta.db_table} WHERE {column['project']} = %s AND {column['deleted_at']} IS NULL"
        ") AS live"
    )


def projects_with_totals(team: Team, *, status: str = "") -> list[tuple[Project, ProjectTotals]]:
    projects: QuerySet = team.projects.select_related("responsible").annotate(**_sums("scenes__"))
    if status == "active":
        projects = projects.exclude(status__in=[Project.Status.DELIVERED, Project.Status.ARCHIVED])
    elif status:
        projects = projects.filter(status=status)
    else:
        projects = projects.exclude(status=Project.Status.ARCHIVED)
    return [
        (
            p,
            _totals(
                p,
                {
                    "expected": p.expected,
                    "planned": p.planned,
                    "n_scenes": p.n_scenes,
                    "n_invalid": p.n_invalid,
                },
            ),
        )
        for p in projects
    ]


def team_scene(*, team: Team, project_id: int, scene_id: int) -> Scene | None:
    """The scene with its project, if both are the team's: one plain statement (keter/sql.py), because
    every keystroke in the scene editor starts here."""
    if not (0 < project_id <= sql.MAX_ID and 0 < scene_id <= sql.MAX_ID):
        return None
    scene_table, project_table = Scene._meta.db_table, Project._meta.db_table
    statement = (
        f"SELECT {sql.columns(Scene)}, {sql.columns(Project)} FROM {scene_table}"
        f" JOIN {project_table} ON {project_table}.id = {scene_table}.project_id"
        f" WHERE {scene_table}.id = %s AND {scene_table}.project_id = %s AND {project_table}.team_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [scene_id, project_id, team.id])
        row = cursor.fetchone()
    if row is None:
        return None
    scene, project = sql.as_models(row, Scene, Project)
    scene.project = project
    return scene


def editor_scenes(project: Project) -> QuerySet:
    return project.scenes.filter(LIVE).select_related("video_model")


@dataclass(frozen=True)
class ApprovedBudget:
    original: int | None  # the first approved figure, kept visible whatever came after
    change_orders: int
    version_number: int | None  # the latest approved version

    @property
    def final(self) -> int:
        return (self.original or 0) + self.change_orders


def approved_budget(project: Project) -> ApprovedBudget:
    """The project's approved figures: no query, the approval service keeps them on the project."""
    return ApprovedBudget(
        original=project.original_budget,
        change_orders=project.change_order_credits,
        version_number=project.approved_version,
    )


@dataclass(frozen=True)
class ProjectSpend:
    actual: int  # captured less refunded, on the jobs' ledger holds (and the budget hold itself)
    committed: int  # reserved by takes still queued or running


def project_spend(project: Project) -> ProjectSpend:
    """What the project's takes cost so far and what its waiting takes keep aside: one query, one snapshot
    (plus the budget hold, when the caller has not loaded it)."""
    figures = Job.objects.filter(project=project).aggregate(
        actual=Coalesce(Sum(spent_on_take()), 0),
        committed=Coalesce(Sum("credits", filter=Q(state__in=Job.ACTIVE_STATES)), 0),
    )
    hold = project.budget_hold
    actual = figures["actual"]
    if hold is not None:
        actual += hold.captured - hold.refunded
    return ProjectSpend(actual=actual, committed=figures["committed"])


@dataclass(frozen=True)
class DiffLine:
    title: str
    before: object  # BudgetLine or None
    after: object  # BudgetLine or None

    @property
    def change(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed" if self.delta else "same"

    @property
    def delta(self) -> int:
        return (self.after.planned_credits if self.after else 0) - (
            self.before.planned_credits if self.before else 0
        )


def budget_diff(version) -> list[DiffLine]:
    """This version's scenes against the previously approved version's, scene by scene."""
    from planner.models import BudgetVersion

    previous = (
        version.project.budget_versions.filter(
            status=BudgetVersion.Status.APPROVED, number__lt=version.number
        )
        .order_by("-number")
        .first()
    )
    after = list(version.lines.all())
    before = list(previous.lines.all()) if previous else []
    before_by_scene = {line.scene_id: line for line in before if line.scene_id}
    lines = [
        DiffLine(a.title, before_by_scene.pop(a.scene_id, None) if a.scene_id else None, a) for a in after
    ]
    lines += [DiffLine(b.title, b, None) for b in before if b.scene_id in before_by_scene]
    return lines
