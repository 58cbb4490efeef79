"""Prices scenes through the cost engine with the team's catalog, plan and success rates."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from keter import sql
from keter.accounts.models import Plan, Team
from planner import costing
from planner.catalog import Catalog, CatalogEntry, plan_check
from planner.models import Job, PriceVersion, Project, Scene, VideoModel
from planner.queue_selectors import LEARNED_RATE_MIN_TAKES, LearnedRate, learned_rates

CONFIDENCE = 0.9  # the planned (P90) figure a budget should cover


@dataclass
class PricingContext:
    catalog: Catalog
    plan: Plan
    day: dt.date
    # model id -> the team's learned success rate, where it has enough takes to trust one
    learned_rates: dict[int, float] = field(default_factory=dict)
    # model id -> how many judged takes that learned rate comes from
    learned_takes: dict[int, int] = field(default_factory=dict)

    def success_rate(self, entry: CatalogEntry) -> float:
        return self.learned_rates.get(entry.model.id, entry.spec.success_rate)

    def rate_label(self, model: VideoModel, rate) -> str:
        """Which rate an estimate used, in words: "learned 32% from 14 takes" or "catalog est. 35%"."""
        percent = f"{float(rate) * 100:.0f}%"
        judged = self.learned_takes.get(model.id)
        if judged:
            return f"learned {percent} from {judged} takes"
        return f"catalog {'est. ' if model.success_rate_is_estimate else ''}{percent}"


def pricing_context(team: Team, *, day: dt.date | None = None) -> PricingContext:
    day = day or timezone.localdate()
    return _context(team, Catalog.load(day), day)


def _context(
    team: Team, catalog: Catalog, day: dt.date, learned: dict[int, LearnedRate] | None = None
) -> PricingContext:
    learned = learned_rates(team) if learned is None else learned
    return PricingContext(
        catalog=catalog,
        plan=team.plan,
        day=day,
        learned_rates={model_id: rate.rate for model_id, rate in learned.items()},
        learned_takes={model_id: rate.judged for model_id, rate in learned.items()},
    )


def scene_pricing_context(
    team: Team, *, project_id: int, scene_id: int, data: Mapping[str, str]
) -> tuple[Scene, PricingContext] | None:
    """The scene being edited (with its project), if both are the team's, and a context for re-pricing it:
    the catalog holds only the scene's model and the model posted, if any, each with the price in effect
    today (as in Catalog.load), and the team's learned rates of just those models.

    It is the request behind every keystroke in the editor (the whole catalog costs two queries and a
    spec per model), so all of it is one plain statement (keter/sql.py)."""
    if not (0 < project_id <= sql.MAX_ID and 0 < scene_id <= sql.MAX_ID):
        return None
    day = timezone.localdate()
    # Stripped as the scene form strips it, so the model the form asks for is the one loaded.
    posted = str(data.get("model", "")).strip()
    # A NUL names no model (and PostgreSQL refuses it in a query): the form says so.
    slug = posted if posted and "\x00" not in posted else None
    rows = _scene_and_prices(team=team, project_id=project_id, scene_id=scene_id, slug=slug, day=day)
    if not rows:
        return None
    scene, project, *_ = rows[0]
    scene.project = project
    entries: dict[str, CatalogEntry] = {}
    learned: dict[int, LearnedRate] = {}
    for _, _, price, model, judged, keepers in rows:
        # Newest first: the first version of a model is the one in effect; a model without one is left out.
        if price is None or model.slug in entries:
            continue
        entries[model.slug] = CatalogEntry(
            model=model, spec=model.spec(), rule=price.price_rule(), price_from=price.effective_from
        )
        # As learned_rates() has it: the team's own rate once enough of its takes were judged.
        if judged >= LEARNED_RATE_MIN_TAKES:
            learned[model.id] = LearnedRate(keepers, judged)
    return scene, _context(team, Catalog(entries, day), day, learned)


def _scene_and_prices(*, team: Team, project_id: int, scene_id: int, slug: str | None, day: dt.date) -> list:
    """(scene, project, price, model, judged takes, keepers): a row for every price version in effect by
    `day` of the scene's model and of the model called `slug`, newest first (a row with no price when
    there is none); the takes are the team's with that model, counted as learned_rates()."""
    scene, project = Scene._meta.db_table, Project._meta.db_table
    price, model, job = PriceVersion._meta.db_table, VideoModel._meta.db_table, Job._meta.db_table
    takes = f"SELECT COUNT(*) FROM {job} WHERE {job}.team_id = %s AND {job}.video_model_id = {model}.id"
    statement = (
        f"SELECT {sql.columns(Scene)}, {sql.columns(Project)}, {sql.columns(PriceVersion)},"
        f" {sql.columns(VideoModel)},"
        f" ({takes} AND {job}.verdict IN (%s, %s)), ({takes} AND {job}.verdict = %s)"
        f" FROM {scene} JOIN {project} ON {project}.id = {scene}.project_id"
        f" LEFT JOIN {model} ON ({model}.id = {scene}.video_model_id OR {model}.slug = %s)"
        f" LEFT JOIN {price} ON {price}.video_model_id = {model}.id AND {price}.effective_from <= %s"
        f" WHERE {scene}.id = %s AND {scene}.project_id = %s AND {project}.team_id = %s"
        f" ORDER BY {price}.effective_from DESC"
    )
    keeper, rejected = Job.Verdict.KEEPER.value, Job.Verdict.REJECTED.value
    params = [team.id, keeper, rejected, team.id, keeper, slug, connection.ops.adapt_datefield_value(day)]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, scene_id, project_id, team.id])
        rows = cursor.fetchall()
    return [sql.as_models(row, Scene, Project, PriceVersion, VideoModel) for row in rows]


def take_params(scene: Scene) -> costing.TakeParams:
    return costing.TakeParams(
        seconds=scene.seconds,
        quality=scene.quality or None,
        audio=scene.audio,
        fast_motion=scene.fast_motion,
        hdr=scene.hdr,
        upscale_4k=scene.upscale_4k,
        sound_effects=scene.sound_effects,
        image_refs=scene.image_refs,
        video_refs=scene.video_refs,
    )


ESTIMATE_FIELDS = [
    "billed_seconds",
    "credits_per_take",
    "success_rate",
    "expected_takes",
    "planned_takes",
    "expected_credits",
    "planned_credits",
    "estimate_error",
    "estimate_error_field",
    "priced_on",
]


def price_scene(scene: Scene, ctx: PricingContext) -> Scene:
    """Fill the scene's estimate columns in memory (no save); a refusal marks it invalid with the reason."""
    scene.priced_on = ctx.day
    try:
        entry = ctx.catalog.by_id()[scene.video_model_id] if scene.video_model_id else None
        if entry is None:
            raise costing.UnsupportedTakeError("choose a model", field="model")
        if not entry.model.is_active:
            raise costing.UnsupportedTakeError(
                f"{entry.model.name} is retired: choose another model", field="model"
            )
        params = take_params(scene)
        take = entry.take_cost(params)
        plan_check(plan=ctx.plan, entry=entry, params=params)
        rate = ctx.success_rate(entry)
        estimate = costing.scene_estimate(
            credits_per_take=take.credits,
            variants=scene.variants,
            success_rate=rate,
            confidence=CONFIDENCE,
            planned_takes_override=scene.planned_takes_override,
        )
    except costing.CostError as error:
        scene.estimate_error, scene.estimate_error_field = error.message, error.field
        scene.billed_seconds = scene.credits_per_take = scene.planned_takes = 0
        scene.expected_credits = scene.planned_credits = 0
        scene.expected_takes = 0.0
        return scene
    scene.estimate_error = scene.estimate_error_field = ""
    scene.billed_seconds = take.billed_seconds
    scene.credits_per_take = take.credits
    scene.success_rate = Decimal(str(round(rate, 3)))
    scene.expected_takes = estimate.expected_takes
    scene.planned_takes = estimate.planned_takes
    scene.expected_credits = estimate.expected_credits
    scene.planned_credits = estimate.planned_credits
    return scene
