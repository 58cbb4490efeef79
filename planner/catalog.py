"""The catalog as the rest of the planner reads it: a snapshot of models and the prices in effect on a date.

Loading the snapshot costs two queries whatever the number of scenes priced against it, which keeps the
scene editor's query count constant.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from keter.accounts.models import Plan
from keter.errors import DomainError
from planner import costing
from planner.catalog_data import MODELS
from planner.models import PriceVersion, VideoModel


class UnknownModel(DomainError):
    field = "model"


@dataclass(frozen=True)
class CatalogEntry:
    model: VideoModel
    spec: costing.ModelSpec
    rule: costing.PriceRule
    price_from: dt.date

    def take_cost(self, params: costing.TakeParams) -> costing.TakeCost:
        return costing.take_cost(self.spec, self.rule, params)


class Catalog:
    """Every model with the price in effect on `day` (today by default)."""

    def __init__(self, entries: dict[str, CatalogEntry], day: dt.date):
        self.entries = entries
        self.day = day
        self._by_id = {e.model.id: e for e in entries.values()}

    @classmethod
    def load(cls, day: dt.date | None = None, *, include_retired: bool = True) -> "Catalog":
        day = day or timezone.localdate()
        models = VideoModel.objects.all() if include_retired else VideoModel.objects.filter(is_active=True)
        prices: dict[int, PriceVersion] = {}
        # Newest first: the first version on or before `day` is the one in effect.
        for price in PriceVersion.objects.filter(effective_from__lte=day).order_by("-effective_from"):
            prices.setdefault(price.video_model_id, price)
        entries = {
            m.slug: CatalogEntry(
                model=m, spec=m.spec(), rule=prices[m.id].price_rule(), price_from=prices[m.id].effective_from
            )
            for m in models
            if m.id in prices
        }
        return cls(entries, day)

    def get(self, slug: str) -> CatalogEntry:
        entry = self.entries.get(slug)
        if entry is None:
            raise UnknownModel(
                f"there is no model called {slug!r} in the catalog" if slug else "choose a model"
            )
        return entry

    def by_id(self) -> dict[int, CatalogEntry]:
        return self._by_id

    def __iter__(self):
        return iter(self.entries.values())


def plan_check(*, plan: Plan, entry: CatalogEntry, params: costing.TakeParams) -> None:
    """Refuse a take the team's plan does not allow, in the engine's words ("your plan allows up to 720p")."""
    costing.check_plan(
        entry.spec, params, max_quality=plan.max_quality or None, max_seconds=plan.max_clip_seconds
    )


def plan_allows_quality(plan: Plan, quality: str) -> bool:
    return not plan.max_quality or costing.quality_rank(quality) <= costing.quality_rank(plan.max_quality)


@transaction.atomic
def load_catalog() -> list[VideoModel]:
    """Create or update the seed models and their seed prices (idempotent; edits of other prices are kept)."""
    spec_fields = {f.name for f in VideoModel._meta.fields} - {"id", "slug", "position"}
    loaded = []
    for position, entry in enumerate(MODELS):
        defaults = {name: entry[name] for name in spec_fields if name in entry}
        defaults["success_rate"] = Decimal(str(entry["success_rate"]))
        defaults["position"] = position
        model, _ = VideoModel.objects.update_or_create(slug=entry["slug"], defaults=defaults)
        PriceVersion.objects.update_or_create(
            video_model=model,
            effective_from=dt.date.fromisoformat(entry["price_effective"]),
            defaults={"rule": entry["price_rule"], "source": "shared/reference/video-pricing.md"},
        )
        loaded.append(model)
    return loaded
