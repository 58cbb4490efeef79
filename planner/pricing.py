"""Prices scenes through the cost engine with the team's catalog, plan and success rates."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from keter.accounts.models import Plan, Team
from planner import costing
from planner.catalog import Catalog, CatalogEntry, plan_check
from planner.models import Job, PriceVersion, Scene, VideoModel
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


def _context(team: Team, catalog: Catalog, day: dt.date, learned=None) -> PricingContext:
    learned = learned_rates(team) if learned is None else learned
    return PricingContext(
        catalog=catalog,
        plan=team.plan,
        day=day,
        learned_rates={model_id: rate.rate for model_id, rate in learned.items()},
        learned_takes={model_id: rate.judged for model_id, rate in learned.items()},
    )


def scene_pricing_context(team: Team, *, scene: Scene, data: Mapping[str, str]) -> PricingContext:
    """A context for re-pricing one edited scene: the catalog holds only the scene's model and the model
    posted, if any, each with the price in effect today (as in Catalog.load), and the team's learned rates
    of just those models. It is the request behind every keystroke in the editor, and the whole catalog
    costs two queries and a spec per model."""
    day = timezone.localdate()
    models = Q(video_model_id=scene.video_model_id)
    # Stripped as the scene form strips it, so the model the form asks for is the one loaded.
    if posted := str(data.get("model", "")).strip():
        models |= Q(video_model__slug=posted)
    prices = (
        PriceVersion.objects.filter(models, effective_from__lte=day)
        .select_related("video_model")
        .order_by("-effective_from")
    )
    entries: dict[str, CatalogEntry] = {}
    for price in prices:  # newest first: the first version of a model is the one in effect
        model = price.video_model
        if model.slug not in entries:
            entries[model.slug] = CatalogEntry(
                model=model, spec=model.spec(), rule=price.price_rule(), price_from=price.effective_from
            )
    catalog = Catalog(entries, day)
    return _context(team, catalog, day, _learned_rates(team, list(catalog.by_id())))


def _learned_rates(team: Team, model_ids: list[int]) -> dict[int, LearnedRate]:
    """learned_rates() for these models only, as one plain statement: every keystroke in the editor asks
    for it, and through the ORM the grouped count cost more to build than to run."""
    if not model_ids:
        return {}
    column = {f.name: connection.ops.quote_name(f.column) for f in Job._meta.concrete_fields}
    sql = (
        f"SELECT {column['video_model']}, COUNT(*), SUM(CASE WHEN {column['verdict']} = %s THEN 1 ELSE 0 END)"
        f" FROM {Job._meta.db_table} WHERE {column['team']} = %s AND {column['verdict']} IN (%s, %s)"
        f" AND {column['video_model']} IN ({', '.join(['%s'] * len(model_ids))})"
        f" GROUP BY {column['video_model']} HAVING COUNT(*) >= %s"
    )
    keeper, rejected = Job.Verdict.KEEPER.value, Job.Verdict.REJECTED.value
    with connection.cursor() as cursor:
        cursor.execute(sql, [keeper, team.id, keeper, rejected, *model_ids, LEARNED_RATE_MIN_TAKES])
        rows = cursor.fetchall()
    return {model_id: LearnedRate(int(keepers), judged) for model_id, judged, keepers in rows}


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
