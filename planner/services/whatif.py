"""What-if: price selected scenes with another model, quality or length, side by side, before applying."""

import copy
from dataclasses import dataclass

from django.db import transaction

from keter.errors import DomainError
from planner import costing
from planner.models import Project, Scene
from planner.pricing import PricingContext, price_scene
from planner.selectors import ProjectTotals, project_totals
from planner.services.scenes import apply_scene_values, scene_update


class WhatIfError(DomainError):
    pass


@dataclass
class WhatIfRow:
    scene: Scene
    before: Scene
    after: Scene

    @property
    def delta(self) -> int | None:
        if not self.after.is_valid:
            return None
        return self.after.planned_credits - (self.before.planned_credits if self.before.is_valid else 0)


@dataclass
class WhatIf:
    rows: list[WhatIfRow]
    before: ProjectTotals
    after: costing.ProjectTotals
    invalid_after: int

    @property
    def delta(self) -> int:
        return self.after.total_credits - self.before.total_credits


def _selected(project: Project, scene_ids: list[int] | None) -> list[Scene]:
    scenes = project.scenes.filter(deleted_at__isnull=True).select_related("video_model")
    if scene_ids is not None:
        scenes = scenes.filter(id__in=scene_ids)
    selected = list(scenes)
    if not selected:
        raise WhatIfError("Tick at least one scene, or choose all scenes", field="scenes")
    return selected


def _changes(*, model: str, quality: str, seconds: int | None) -> dict:
    changes = {k: v for k, v in {"model": model, "quality": quality, "seconds": seconds}.items() if v}
    if not changes:
        raise WhatIfError("Choose another model, quality or length to compare")
    return changes


def whatif_preview(
    *, project: Project, ctx: PricingContext, scene_ids: list[int] | None, model="", quality="", seconds=None
) -> WhatIf:
    changes = _changes(model=model, quality=quality, seconds=seconds)
    if "model" in changes:
        ctx.catalog.get(changes["model"])  # an unknown model is refused up front, not per scene
    rows = []
    for scene in _selected(project, scene_ids):
        after = copy.copy(scene)
        apply_scene_values(after, changes, ctx)
        price_scene(after, ctx)
        rows.append(WhatIfRow(scene=scene, before=scene, after=after))
    before = project_totals(project)
    # The untouched scenes keep their figures; the selected ones take their "after" figures.
    untouched_expected = before.expected_credits - sum(
        r.before.expected_credits for r in rows if r.before.is_valid
    )
    untouched_planned = before.planned_credits - sum(
        r.before.planned_credits for r in rows if r.before.is_valid
    )
    after = costing.totals_from_sums(
        expected_credits=untouched_expected + sum(r.after.expected_credits for r in rows if r.after.is_valid),
        planned_credits=untouched_planned + sum(r.after.planned_credits for r in rows if r.after.is_valid),
        contingency_percent=project.contingency_percent,
    )
    invalid_untouched = before.invalid_scenes - sum(1 for r in rows if not r.before.is_valid)
    return WhatIf(
        rows=rows,
        before=before,
        after=after,
        invalid_after=invalid_untouched + sum(1 for r in rows if not r.after.is_valid),
    )


@transaction.atomic
def whatif_apply(
    *, project: Project, ctx: PricingContext, scene_ids: list[int] | None, model="", quality="", seconds=None
) -> list[Scene]:
    """Apply the same change to every selected scene, as if the producer had typed it in each."""
    changes = _changes(model=model, quality=quality, seconds=seconds)
    data = {k: str(v) for k, v in changes.items()}
    return [scene_update(scene=s, data=data, ctx=ctx).scene for s in _selected(project, scene_ids)]
