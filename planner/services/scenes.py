"""Writes to a project's scene list. Every write re-prices what it touched, so totals are always current."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from keter import sql
from keter.errors import DomainError
from planner.forms import AUDIO_VALUES, SceneForm
from planner.models import Project, Scene
from planner.pricing import ESTIMATE_FIELDS, PricingContext, price_scene

EDITABLE_FIELDS = [
    "title",
    "prompt",
    "seconds",
    "video_model",
    "quality",
    "audio",
    "fast_motion",
    "hdr",
    "upscale_4k",
    "sound_effects",
    "image_refs",
    "video_refs",
    "reference_links",
    "variants",
    "planned_takes_override",
    "notes",
    "status",
]
COPIED_FROM_LAST = [
    f for f in EDITABLE_FIELDS if f not in {"title", "prompt", "notes", "reference_links", "status"}
]


@dataclass
class SceneChange:
    scene: Scene
    errors: dict[str, str] = field(default_factory=dict)  # field -> message, form and engine alike
    model_changed: bool = False


def next_scene_position(project: Project) -> int:
    top = project.scenes.aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


def apply_scene_values(scene: Scene, values: Mapping, ctx: PricingContext) -> bool:
    """Set cleaned values on the scene; a new model resets what it does not offer. True if it changed."""
    model_changed = False
    for name, value in values.items():
        if name == "model":
            entry = ctx.catalog.get(value)
            model_changed = scene.video_model_id != entry.model.id
            scene.video_model = entry.model
        elif name == "audio":
            scene.audio = AUDIO_VALUES[value]
        else:
            setattr(scene, name, value)
    if model_changed:
        spec = ctx.catalog.by_id()[scene.video_model_id].spec
        if scene.quality not in spec.qualities:
            scene.quality = spec.default_quality
        for option in ("fast_motion", "hdr", "upscale_4k", "sound_effects"):
            if option not in spec.options:
                setattr(scene, option, False)
        if not spec.supports_audio:
            scene.audio = None
    return model_changed


def _clean(data: Mapping[str, str], ctx: PricingContext) -> tuple[dict, dict[str, str], dict[str, dict]]:
    """Split posted data into cleaned values, per-field messages, and the raw text of refused fields."""
    form = SceneForm(data)
    form.is_valid()
    values = dict(form.cleaned_data)
    errors = {name: messages[0] for name, messages in form.errors.items()}
    if "model" in values:
        try:
            ctx.catalog.get(values["model"])
        except DomainError as error:
            errors["model"] = error.message
            del values["model"]
    # Kept with its message so a reload still shows what was typed and why it was refused. Without NUL
    # characters (in the value, or echoed in a message): PostgreSQL's JSON cannot store them.
    refused = {
        name: {
            "value": str(data.get(name, "")).replace("\x00", "")[:200],
            "message": errors[name].replace("\x00", ""),
        }
        for name in errors
    }
    return values, errors, refused


def _stored_values(scene: Scene) -> dict:
    return {f.name: getattr(scene, f.attname) for f in Scene._meta.concrete_fields if not f.primary_key}


def scene_update(*, scene: Scene, data: Mapping[str, str], ctx: PricingContext) -> SceneChange:
    """Save what the producer typed and re-price the scene.

    Values that parse are saved even when the engine refuses the combination (a 7 s clip of a 5-or-10 s
    model): the scene is then invalid, with the engine's message. Text that does not even parse is kept in
    `invalid_input`, so nothing typed is lost, not even across a reload.

    Only the columns that changed are written, in one plain UPDATE (so no transaction is needed): this
    runs on every keystroke in the editor (keter/sql.py).
    """
    before = _stored_values(scene)
    values, errors, raw = _clean(data, ctx)
    model_changed = apply_scene_values(scene, values, ctx)
    scene.invalid_input = {k: v for k, v in scene.invalid_input.items() if k not in values} | raw
    price_scene(scene, ctx)
    if scene.estimate_error and scene.estimate_error_field not in errors:
        errors[scene.estimate_error_field or "model"] = scene.estimate_error
    changed = [name for name, value in _stored_values(scene).items() if before[name] != value]
    if changed:
        sql.update(scene, changed)
    return SceneChange(scene=scene, errors=errors, model_changed=model_changed)


@transaction.atomic
def scene_add(*, project: Project, ctx: PricingContext, data: Mapping[str, str] | None = None) -> SceneChange:
    """A new scene at the end, with the settings of the last scene (or the catalog's first model)."""
    last = project.scenes.filter(deleted_at__isnull=True).order_by("-position", "-id").first()
    scene = Scene(project=project, position=next_scene_position(project))
    if last is not None:
        for name in COPIED_FROM_LAST:
            setattr(scene, name, getattr(last, name))
    else:
        first = next(iter(ctx.catalog))
        scene.video_model = first.model
        scene.quality = first.spec.default_quality
        spec = first.spec
        scene.seconds = spec.lengths[0] if spec.lengths else max(spec.min_seconds, min(5, spec.max_seconds))
        needs = first.spec.required_reference
        scene.image_refs, scene.video_refs = int(needs == "image"), int(needs == "video")
    scene.title = f"Scene {scene.position + 1}"
    if data:
        values, errors, raw = _clean(data, ctx)
        apply_scene_values(scene, values, ctx)
        scene.invalid_input = raw
    else:
        errors = {}
    price_scene(scene, ctx)
    scene.save()
    return SceneChange(scene=scene, errors=errors)


@transaction.atomic
def scene_duplicate(*, scene: Scene) -> Scene:
    """A copy right after the original; later scenes move down one place."""
    Scene.objects.filter(project=scene.project_id, position__gt=scene.position).update(
        position=F("position") + 1
    )
    copy = Scene.objects.get(pk=scene.pk)
    copy.pk = None
    copy.position = scene.position + 1
    copy.title = f"{scene.title} (copy)"[:120]
    copy.save()
    return copy


def scene_delete(*, scene: Scene) -> Scene:
    """Deleting is undoable: the scene leaves the list and the totals until restored."""
    scene.deleted_at = timezone.now()
    scene.save(update_fields=["deleted_at"])
    return scene


def scene_restore(*, scene: Scene) -> Scene:
    scene.deleted_at = None
    scene.save(update_fields=["deleted_at"])
    return scene


@transaction.atomic
def scene_move(*, scene: Scene, direction: str) -> None:
    """Swap places with the neighbour above or below (among scenes not deleted)."""
    siblings = Scene.objects.select_for_update().filter(project=scene.project_id, deleted_at__isnull=True)
    if direction == "up":
        neighbour = siblings.filter(position__lt=scene.position).order_by("-position", "-id").first()
    else:
        neighbour = siblings.filter(position__gt=scene.position).order_by("position", "id").first()
    if neighbour is None:
        return
    scene.position, neighbour.position = neighbour.position, scene.position
    Scene.objects.bulk_update([scene, neighbour], ["position"])


class ReorderError(DomainError):
    pass


@transaction.atomic
def scenes_reorder(*, project: Project, scene_ids: Iterable[int]) -> None:
    """Persist a new order given as the full list of the project's scene ids (drag and drop)."""
    ids = list(scene_ids)
    scenes = {s.id: s for s in project.scenes.select_for_update().filter(deleted_at__isnull=True)}
    if sorted(ids) != sorted(scenes):
        raise ReorderError("The scene list changed meanwhile: reload the page and try again")
    for position, scene_id in enumerate(ids):
        scenes[scene_id].position = position
    Scene.objects.bulk_update(scenes.values(), ["position"])


def project_reprice(*, project: Project, ctx: PricingContext) -> list[Scene]:
    """Re-price every scene with today's catalog, plan and rates; saves only the scenes whose figures move."""
    scenes = list(project.scenes.filter(deleted_at__isnull=True).select_related("video_model"))
    changed = []
    for scene in scenes:
        before = [getattr(scene, f) for f in ESTIMATE_FIELDS]
        price_scene(scene, ctx)
        if [getattr(scene, f) for f in ESTIMATE_FIELDS] != before:
            changed.append(scene)
    if changed:
        Scene.objects.bulk_update(changed, ESTIMATE_FIELDS, batch_size=500)
    return scenes
