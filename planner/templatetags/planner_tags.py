from types import SimpleNamespace

from django import template
from django.urls import reverse

from planner.costing import OPTION_LABELS

register = template.Library()

SHOWN_FIELDS = [
    "title",
    "prompt",
    "seconds",
    "variants",
    "planned_takes_override",
    "image_refs",
    "video_refs",
]
SHOWN_FIELDS += ["reference_links", "notes"]


@register.simple_tag(takes_context=True)
def scene_bindings(context, scene, catalog):
    """What a scene row needs besides the scene: its catalog entry, the options its model offers, the
    values to show (what the producer typed, even where it could not be saved) and its messages."""
    entry = catalog.by_id().get(scene.video_model_id)
    option_names = [o for o in OPTION_LABELS if o != "off_peak" and entry and o in entry.spec.options]
    value = {name: getattr(scene, name) for name in SHOWN_FIELDS}
    errors = {}
    for name, refused in scene.invalid_input.items():
        value[name] = refused.get("value", "")
        errors[name] = refused.get("message", "")
    if scene.estimate_error:
        errors.setdefault(scene.estimate_error_field or "model", scene.estimate_error)
    team = context["team"]
    pricing = context.get("pricing")
    rate_label = ""
    if pricing is not None and entry is not None and scene.is_valid:
        rate_label = pricing.rate_label(entry.model, scene.success_rate)
    return SimpleNamespace(
        rate_label=rate_label,
        entry=entry,
        options=[(o, OPTION_LABELS[o]) for o in option_names],
        option_names=option_names,
        options_label=", ".join(OPTION_LABELS[o] for o in option_names if getattr(scene, o)),
        value=value,
        errors=errors,
        update_url=reverse("planner:scene-update", args=[team.slug, scene.project_id, scene.id]),
    )
