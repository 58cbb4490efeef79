"""Reads of the generation queue and its takes: each a fixed number of queries whatever the size."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from keter.accounts.models import Team
from ledger.models import Hold
from planner.models import Job, Project, Scene

J = Job.State
# A team's own rate replaces the catalog's once this many of its takes with the model were judged.
LEARNED_RATE_MIN_TAKES = 10
# Nobody keeps nothing for ever: a floor keeps the estimator finite after a run of rejects.
LEARNED_RATE_FLOOR = 0.01


@dataclass(frozen=True)
class LearnedRate:
    keepers: int
    judged: int

    @property
    def rate(self) -> float:
        return max(round(self.keepers / self.judged, 3), LEARNED_RATE_FLOOR)


def learned_rates(team: Team) -> dict[int, LearnedRate]:
    """Per model: keepers / (keepers + rejects) of the team's judged takes, where there are enough."""
    rows = (
        Job.objects.filter(team=team, verdict__in=[Job.Verdict.KEEPER, Job.Verdict.REJECTED])
        .order_by()
        .values("video_model_id")
        .annotate(judged=Count("id"), keepers=Count("id", filter=Q(verdict=Job.Verdict.KEEPER)))
        .filter(judged__gte=LEARNED_RATE_MIN_TAKES)
    )
    return {row["video_model_id"]: LearnedRate(row["keepers"], row["judged"]) for row in rows}


@dataclass
class SceneTakes:
    """How far one scene got: its jobs counted by state and verdict, and what they cost."""

    launched: int = 0  # every job but the cancelled ones
    active: int = 0
    succeeded: int = 0
    keepers: int = 0
    rejected: int = 0
    charged: int = 0  # takes that cost credits (successes and charged moderation)
    spent: int = 0  # credits captured less refunded

    @property
    def pending(self) -> int:
        return self.succeeded - self.keepers - self.rejected


def spent_on_take() -> Subquery:
    """What a take's hold spent (captured less refunded), as a subquery on the take's row.

    Holds are looked up by their key, take by take (here and for `scene_takes`' charged takes): a join
    let PostgreSQL hash the whole hold table, every team's (177,000 rows on the benchmark's database,
    11 ms of a launch), where the lookups take 0.5 ms for a project of 300 takes and do not grow with
    other teams' history."""
    return Subquery(_take_hold().values(spent=F("captured") - F("refunded")))


def _take_hold() -> QuerySet:
    return Hold.objects.filter(pk=OuterRef("hold_id")).order_by()


def scene_takes(scene_ids) -> dict[int, SceneTakes]:
    """SceneTakes for each scene id, zero for scenes without jobs: one query (none for no scenes)."""
    takes = defaultdict(SceneTakes)
    scene_ids = list(scene_ids)
    if not scene_ids:
        return takes
    rows = (
        Job.objects.filter(scene_id__in=scene_ids)
        .order_by()
        .values("scene_id")
        .annotate(
            launched=Count("id", filter=~Q(state=J.CANCELLED)),
            active=Count("id", filter=Q(state__in=Job.ACTIVE_STATES)),
            succeeded=Count("id", filter=Q(state=J.SUCCEEDED)),
            keepers=Count("id", filter=Q(state=J.SUCCEEDED, verdict=Job.Verdict.KEEPER)),
            rejected=Count("id", filter=Q(state=J.SUCCEEDED, verdict=Job.Verdict.REJECTED)),
            charged=Count("id", filter=Exists(_take_hold().filter(captured__gt=0))),
            spent=Coalesce(Sum(spent_on_take()), 0),
        )
    )
    for row in rows:
        scene_id = row.pop("scene_id")
        takes[scene_id] = SceneTakes(**row)
    return takes


def attach_takes(scenes: list[Scene]) -> list[Scene]:
    """Give each scene its `takes` and `keepers` (read by Scene.is_ready_for_editing) in one query."""
    takes = scene_takes(s.id for s in scenes)
    for scene in scenes:
        scene.takes = takes[scene.id]
        scene.keepers = scene.takes.keepers
    return scenes


def remaining_planned_takes(scene: Scene, takes: SceneTakes) -> int:
    """What is left of the scene's planned takes: planned − succeeded − queued or running."""
    return scene.planned_takes - takes.succeeded - takes.active


@dataclass
class QueueRow:
    job: Job
    position: int | None = None  # place in the team's line, for queued jobs
    progress: int = 0  # percent, for running jobs
    seconds_left: float | None = None


@dataclass
class QueueView:
    rows: list[QueueRow]
    running: int
    queued: int
    limit: int
    now: datetime = field(default_factory=timezone.now)

    @property
    def is_stalled(self) -> bool:
        """Takes wait while slots are free: the workers or the broker cannot be reached right now."""
        return self.queued > 0 and self.running < self.limit


FINISHED_SHOWN = 30


def queue_view(team: Team, *, project_id: int | None = None) -> QueueView:
    """The team's line (every queued and running job, in order) and its latest finished jobs."""
    jobs = Job.objects.filter(team=team).select_related("project", "scene", "video_model")
    active = list(jobs.filter(state__in=Job.ACTIVE_STATES).order_by("queued_at", "id"))
    finished = jobs.filter(state__in=Job.FINAL_STATES)
    if project_id is not None:
        finished = finished.filter(project_id=project_id)
    finished = list(finished.order_by("-finished_at", "-id")[:FINISHED_SHOWN])
    now = timezone.now()
    rows, position = [], 0
    for job in active:
        row = QueueRow(job)
        if job.state == J.QUEUED:
            position += 1
            row.position = position
        elif job.started_at is not None:
            elapsed = (now - job.started_at).total_seconds()
            row.seconds_left = max(job.render_seconds - elapsed, 0.0)
            row.progress = 99 if not job.render_seconds else min(int(100 * elapsed / job.render_seconds), 99)
        if project_id is None or job.project_id == project_id:
            rows.append(row)
    rows += [QueueRow(job, progress=100) for job in finished]
    running = sum(1 for job in active if job.state == J.RUNNING)
    return QueueView(
        rows=rows,
        running=running,
        queued=len(active) - running,
        limit=team.plan.concurrent_generations,
        now=now,
    )


def scene_jobs(scene: Scene) -> QuerySet[Job]:
    return scene.jobs.select_related("video_model").order_by("take_number")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _names(scenes: list[Scene], limit: int = 3) -> str:
    names = [f"“{s}”" for s in scenes[:limit]]
    more = len(scenes) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def project_readiness(project: Project, scenes: list[Scene], *, budget: int, spent: int, committed: int):
    """The six checks before hand-over, each green or saying what is missing.

    `scenes` are the project's live scenes with `attach_takes` applied; cut scenes are left out.
    """
    scenes = [s for s in scenes if s.status != Scene.Status.CUT]
    over_cost = [s for s in scenes if s.takes.spent > s.planned_credits]
    no_takes = [s for s in scenes if s.takes.succeeded < s.variants]
    repeats = [s for s in scenes if s.takes.launched > s.planned_takes]
    not_ready = [s for s in scenes if not s.is_ready_for_editing]
    invalid = [s for s in scenes if not s.is_valid]
    active = sum(s.takes.active for s in scenes)
    checks = [
        Check(
            "Scene cost vs estimate",
            not over_cost,
            f"{_names(over_cost)} spent more than planned"
            if over_cost
            else "Every scene stayed within its planned credits",
        ),
        Check(
            "The queue",
            not active,
            f"{active} take{'s' if active != 1 else ''} still queued or running"
            if active
            else "Nothing left queued or running",
        ),
        Check(
            "Successful takes",
            bool(scenes) and not no_takes,
            f"{_names(no_takes)} need{'s' if len(no_takes) == 1 else ''} more successful takes"
            if no_takes
            else ("Every scene has enough successful takes" if scenes else "No scenes yet"),
        ),
        Check(
            "Limits respected",
            spent + committed <= budget and not invalid,
            f"{spent + committed:,} credits spent or committed of {budget:,} approved"
            if spent + committed > budget
            else (
                f"{_names(invalid)} break{'s' if len(invalid) == 1 else ''} the plan's or the model's limits"
                if invalid
                else f"{spent + committed:,} of {budget:,} approved credits used; the plan's limits hold"
            ),
        ),
        Check(
            "Repeat generations vs planned",
            not repeats,
            f"{_names(repeats)} took more takes than planned"
            if repeats
            else "No scene went past its planned takes",
        ),
        Check(
            "Ready for editing",
            bool(scenes) and not not_ready,
            f"{len(not_ready)} of {len(scenes)} scene{'s' if len(scenes) != 1 else ''} "
            f"still need{'s' if len(not_ready) == 1 else ''} keepers: {_names(not_ready)}"
            if not_ready
            else ("Every scene has its keepers" if scenes else "No scenes yet"),
        ),
    ]
    return checks
