"""The planner's part of a generated history (`manage.py generate_history`): the projects, budget
approvals, scenes and jobs behind the ledger's story, so the reports page has a real year to aggregate.

The ledger simulates the money (ledger/history.py) and knows nothing of video; it asks, through
`ledger.signals.history_starting`, for the first free project, approval and job ids (so its references and
keys are the ones the planner's services write: `hold:approval:<id>`, `reserve:job:<id>`, `capture:job:<id>`)
and for the kinds of take to draw, priced by the catalog. Once its rows are written it sends
`history_generated` with the story, and this module writes the planner's rows to match, in bulk (COPY on
PostgreSQL), in the same transaction: a budget hold per approved project (extended by each change order),
a hold per job, captured when the take was charged and voided (its credits returned to the budget) when not.
"""

import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Max
from django.dispatch import receiver
from django.utils import timezone

from keter.accounts.models import Membership, Plan, Team, User
from keter.accounts.roles import Role
from ledger.history import HistoryResult, HistorySetup, Outcome, TakeKind
from ledger.models import Hold
from ledger.signals import history_generated, history_starting
from planner import costing
from planner.catalog import Catalog, CatalogEntry, load_catalog, plan_check
from planner.models import BudgetVersion, Job, Project, Scene, VideoModel
from planner.pricing import ESTIMATE_FIELDS, PricingContext, price_scene, take_params
from planner.services.renders import job_outcome

SECONDS = (4, 5, 8, 10)  # the lengths asked for, where a model takes any length in a range
PRODUCERS = 3
CONTINGENCY = Decimal("10.00")
PROJECT_NAMES = [
    "Spring campaign", "Product launch", "Brand film", "Music video", "Trailer", "Explainer",
    "Social cut-downs", "Festival teaser", "Documentary B-roll", "Storyboard animatic",
]  # fmt: skip
JOB_COLUMNS = [
    "id", "team_id", "project_id", "scene_id", "video_model_id", "take_number", "params", "credits", "seed",
    "success_rate", "render_seconds", "state", "hold_id", "queued_at", "dispatched_at", "started_at",
    "finished_at", "lease_expires_at", "attempts", "launched_by_id", "verdict", "judged_at",
]  # fmt: skip
BATCH_ROWS = 20_000


@dataclass(frozen=True)
class _Kind:
    """A kind of take the history draws: a model, its settings, and what one take costs."""

    entry: CatalogEntry
    params: costing.TakeParams
    take: costing.TakeCost

    def as_take_kind(self) -> TakeKind:
        model = self.entry.model
        return TakeKind(
            credits=self.take.credits,
            weight=1 / (1 + self.take.credits / 60),  # cheap clips are drafted far more often than 4K ones
            success_rate=float(model.success_rate),
            is_moderation_charged=not model.refund_on_moderation,
        )


def take_kinds(plan: Plan) -> list[_Kind]:
    """Every take the catalog prices and the plan allows, at each offered quality and a few lengths, among
    the models whose failed takes are refunded (the story returns them). Deterministic: the same catalog
    gives the same list, in the same order, to both signals."""
    kinds = []
    for entry in Catalog.load():
        model, spec = entry.model, entry.spec
        if not model.is_active or not model.refund_on_failure:
            continue
        lengths = spec.lengths or [s for s in SECONDS if spec.min_seconds <= s <= (spec.max_seconds or s)]
        for quality in spec.qualities:
            for seconds in lengths:
                params = costing.TakeParams(
                    seconds=seconds,
                    quality=quality,
                    image_refs=int(spec.required_reference == "image"),
                    video_refs=int(spec.required_reference == "video"),
                )
                try:
                    take = entry.take_cost(params)
                    plan_check(plan=plan, entry=entry, params=params)
                except costing.CostError:
                    continue
                if take.credits > 0:
                    kinds.append(_Kind(entry, params, take))
    return kinds


@receiver(history_starting, dispatch_uid="planner.history.number")
def number_the_history(sender, teams: list[Team], options: dict, **kwargs) -> HistorySetup | None:
    """The first free ids, kept free by a lock on the tables until the history's transaction ends; None
    (the ledger's story alone) when the catalog prices no take the teams' plan allows."""
    if not VideoModel.objects.exists():
        load_catalog()
    kinds = [kind.as_take_kind() for kind in take_kinds(teams[0].plan)]
    if not kinds:
        return None
    if connection.vendor == "postgresql":
        tables = ", ".join(m._meta.db_table for m in (Project, BudgetVersion, Scene, Job))
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
    first = {
        what: (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1
        for what, model in (("project", Project), ("approval", BudgetVersion), ("job", Job))
    }
    return HistorySetup(first_numbers=first, take_kinds=kinds)


@dataclass
class _Crew:
    lead: User
    producers: list[User]


def _crew(team: Team) -> _Crew:
    """The team's lead and producers, created for the story where the team has none."""

    def member(role: str, email: str, name: str) -> User:
        user = User.objects.filter(email=email).first() or User.objects.create_user(email, name=name)
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
        return user

    leads = [m.user for m in Membership.objects.filter(team=team, role=Role.LEAD).select_related("user")]
    producers = [
        m.user for m in Membership.objects.filter(team=team, role=Role.PRODUCER).select_related("user")
    ]
    if not leads:
        leads = [member(Role.LEAD, f"lead+{team.slug}@history.keter", f"{team.name} lead")]
    for n in range(len(producers) + 1, PRODUCERS + 1):
        producers.append(member(Role.PRODUCER, f"producer{n}+{team.slug}@history.keter", f"Producer {n}"))
    return _Crew(lead=leads[0], producers=producers)


PROJECT_STATUS = {
    Hold.Status.PENDING: Project.Status.IN_PRODUCTION,
    Hold.Status.POSTED: Project.Status.DELIVERED,
    Hold.Status.VOIDED: Project.Status.ARCHIVED,
    Hold.Status.EXPIRED: Project.Status.ARCHIVED,
}
VERDICTS = [Job.Verdict.PENDING, Job.Verdict.KEEPER, Job.Verdict.REJECTED]


@receiver(history_generated, dispatch_uid="planner.history.write")
def write_the_planner_part(sender, result: HistoryResult, options: dict, **kwargs) -> None:
    if not result.budgets or not isinstance(result.budgets[0].number, int):
        return  # the references were not numbered by us: nothing of ours stands behind them
    rng = random.Random(f"planner-history:{options.get('seed', 1)}")
    kinds = take_kinds(result.teams[0].plan)
    teams = {team.pk: team for team in result.teams}
    crews = {team_id: _crew(team) for team_id, team in teams.items()}
    owner = {b.number: rng.choice(crews[b.team_id].producers) for b in result.budgets}

    # Which takes the producers kept: up to the scene's variants, among the takes that came out.
    variants = {(b.number, i): rng.randint(1, 3) for b in result.budgets for i in range(len(b.take_kinds))}
    kept: Counter = Counter()
    taken: Counter = Counter()
    verdicts = bytearray(len(result.takes))
    for index, take in enumerate(result.takes):
        scene = (take.budget.number, take.scene)
        taken[scene] += 1
        if take.outcome == Outcome.SUCCEEDED:
            draw = rng.random()
            if kept[scene] < variants[scene] and draw < 0.45:
                verdicts[index] = 1
                kept[scene] += 1
            elif draw < 0.8:
                verdicts[index] = 2

    _write_projects(result, rng, owner, crews)
    scene_ids = _write_scenes(result, kinds, teams, variants, kept, taken)
    _write_jobs(result, rng, kinds, teams, owner, scene_ids, verdicts)
    models = [Project, BudgetVersion, Scene, Job]
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(sql)
        if connection.vendor == "postgresql":  # statistics for the rows just loaded, for the reports' plans
            cursor.execute(f"ANALYZE {', '.join(model._meta.db_table for model in models)}")


def _write_projects(result: HistoryResult, rng: random.Random, owner: dict, crews: dict) -> None:
    projects, versions = [], []
    for budget in result.budgets:
        producer = owner[budget.number]
        original = budget.approvals[0][1]
        projects.append(
            Project(
                id=budget.number,
                team_id=budget.team_id,
                name=f"{rng.choice(PROJECT_NAMES)} {budget.number}",
                goal="Generated history",
                responsible=producer,
                status=PROJECT_STATUS[budget.status],
                budget_hold_id=budget.hold_id,
                original_budget=original,
                change_order_credits=sum(credits for _, credits, _ in budget.approvals[1:]),
                approved_version=len(budget.approvals),
                contingency_percent=CONTINGENCY,
                created_by=producer,
                created_at=budget.opened_at - timedelta(days=rng.uniform(1, 10)),
            )
        )
        approved = 0
        for number, (approval, credits, when) in enumerate(budget.approvals, start=1):
            total = approved + credits
            planned = round(total / (1 + CONTINGENCY / 100))
            versions.append(
                BudgetVersion(
                    id=approval,
                    project_id=budget.number,
                    number=number,
                    kind=BudgetVersion.Kind.ORIGINAL if number == 1 else BudgetVersion.Kind.CHANGE_ORDER,
                    status=BudgetVersion.Status.APPROVED,
                    submitted_by=producer,
                    submitted_at=when - timedelta(hours=rng.uniform(1, 48)),
                    reason="" if number == 1 else "More takes than planned to get the keepers",
                    expected_credits=round(planned * 0.8),
                    planned_credits=planned,
                    contingency_percent=CONTINGENCY,
                    contingency_credits=total - planned,
                    total_credits=total,
                    approved_before=approved,
                    decided_by=crews[budget.team_id].lead,
                    decided_at=when,
                    basis=BudgetVersion.Basis.CUSTOM,
                    approved_credits=credits,
                )
            )
            approved = total
    Project.objects.bulk_create(projects, batch_size=2_000)
    BudgetVersion.objects.bulk_create(versions, batch_size=2_000)


def _write_scenes(result, kinds, teams, variants, kept, taken) -> dict[tuple[int, int], int]:
    contexts = {
        team_id: PricingContext(catalog=Catalog.load(), plan=team.plan, day=timezone.localdate())
        for team_id, team in teams.items()
    }
    priced: dict[tuple[int, int, int], dict] = {}
    scenes = []
    for budget in result.budgets:
        for position, kind_index in enumerate(budget.take_kinds):
            kind = kinds[kind_index]
            wanted = variants[(budget.number, position)]
            key = (budget.team_id, kind_index, wanted)
            scene = Scene(
                project_id=budget.number,
                position=position,
                title=f"Shot {position + 1}",
                seconds=kind.params.seconds,
                video_model=kind.entry.model,
                quality=kind.params.quality,
                image_refs=kind.params.image_refs,
                video_refs=kind.params.video_refs,
                variants=wanted,
            )
            if key not in priced:
                price_scene(scene, contexts[budget.team_id])
                priced[key] = {name: getattr(scene, name) for name in ESTIMATE_FIELDS}
            for name, value in priced[key].items():
                setattr(scene, name, value)
            done = kept[(budget.number, position)] >= wanted
            scene.status = Scene.Status.DONE if done else Scene.Status.IN_PRODUCTION
            if not taken[(budget.number, position)]:
                scene.status = Scene.Status.PLANNED
            scenes.append(scene)
    Scene.objects.bulk_create(scenes, batch_size=2_000)
    return {(scene.project_id, scene.position): scene.pk for scene in scenes}


def _seed_for(rng: random.Random, state: str, success_rate: Decimal) -> int:
    """A seed the render simulation turns into this very outcome, so the take replays as it happened."""
    while True:
        seed = rng.randrange(2**31)
        if job_outcome(seed=seed, success_rate=success_rate) == state:
            return seed


def _write_jobs(result, rng, kinds, teams, owner, scene_ids, verdicts) -> None:
    lease = timedelta(seconds=settings.KETER_QUEUE_LEASE_SECONDS)
    slots = {team_id: team.plan.concurrent_generations for team_id, team in teams.items()}
    numbers: Counter = Counter()
    snapshots = {}
    rows = _JobWriter()
    for index, take in enumerate(result.takes):
        kind = kinds[take.kind]
        model = kind.entry.model
        if take.kind not in snapshots:
            params = take_params_for(kind)
            rate = Decimal(str(round(float(model.success_rate), 3)))
            render = model.render_seconds_per_output_second * kind.params.seconds * settings.KETER_SIM_SPEED
            snapshots[take.kind] = (params, rate, render)
        params, rate, render = snapshots[take.kind]
        scene = (take.budget.number, take.scene)
        numbers[scene] += 1
        launched = take.launched_at
        if take.outcome is None:  # still rendering when the story ends, or waiting for a slot
            running = slots[take.team_id] > 0
            slots[take.team_id] -= running
            state = Job.State.RUNNING if running else Job.State.QUEUED
            seed = rng.randrange(2**31)
            dispatched = started = launched if running else None
            finished = None
            leased = result.end + lease if running else None
        else:
            state = take.outcome
            seed = _seed_for(rng, state, rate)
            dispatched, started = launched, launched + timedelta(seconds=rng.uniform(0.5, 5))
            finished, leased = take.settled_at, None
        verdict = VERDICTS[verdicts[index]]
        judged = finished + timedelta(hours=rng.uniform(0.2, 30)) if verdicts[index] else None
        rows.add(
            (take.number, take.team_id, take.budget.number, scene_ids[scene], model.id, numbers[scene],
             params, take.credits, seed, rate, render, state, take.hold_id, launched, dispatched, started,
             finished, leased, int(started is not None), owner[take.budget.number].pk, verdict, judged)
        )  # fmt: skip
    rows.flush()


def take_params_for(kind: _Kind) -> dict:
    """The job's frozen parameters, as the queue snapshots them at launch."""
    scene = Scene(seconds=kind.params.seconds, quality=kind.params.quality, variants=1)
    scene.image_refs, scene.video_refs = kind.params.image_refs, kind.params.video_refs
    return take_params(scene).to_dict() | {
        "quality": kind.take.quality,
        "audio": kind.take.audio,
        "prompt": "",
    }


class _JobWriter:
    """Job rows in batches: COPY on PostgreSQL (the bulk of the planner's rows), bulk INSERTs elsewhere."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.is_postgres = connection.vendor == "postgresql"

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.is_postgres:
            params = JOB_COLUMNS.index("params")
            with connection.cursor() as cursor:
                copy_sql = f"COPY {Job._meta.db_table} ({', '.join(JOB_COLUMNS)}) FROM STDIN"
                with cursor.cursor.copy(copy_sql) as copy:
                    for row in self.rows:
                        copy.write_row((*row[:params], json.dumps(row[params]), *row[params + 1 :]))
        else:
            Job.objects.bulk_create(
                [Job(**dict(zip(JOB_COLUMNS, row, strict=True))) for row in self.rows], batch_size=500
            )
        self.rows.clear()
