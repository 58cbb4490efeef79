"""A scene list as CSV: export everything a scene is made of, import it back (all rows or none)."""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import transaction

from keter.errors import DomainError
from keter.exports import csv_stream, restore
from planner.forms import SceneForm
from planner.models import Project, Scene
from planner.pricing import PricingContext, price_scene
from planner.services.scenes import apply_scene_values, next_scene_position

COLUMNS = [
    "position", "title", "prompt", "seconds", "model", "quality", "audio", "fast_motion", "hdr", "upscale_4k",
    "sound_effects", "image_refs", "video_refs", "reference_links", "variants", "planned_takes_override",
    "notes", "status",
]  # fmt: skip
REQUIRED = {"seconds", "model", "variants"}
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 2000


def _cell(value) -> str:
    return "" if value is None else str(value)


def _audio(value: bool | None) -> str:
    return {None: "", True: "on", False: "off"}[value]


def _bool(value: bool) -> str:
    return "1" if value else "0"


def scene_row(scene: Scene) -> list[str]:
    s = scene
    flags = [_bool(s.fast_motion), _bool(s.hdr), _bool(s.upscale_4k), _bool(s.sound_effects)]
    return [
        _cell(s.position + 1),
        s.title,
        s.prompt,
        _cell(s.seconds),
        s.video_model.slug,
        s.quality,
        _audio(s.audio),
        *flags,
        _cell(s.image_refs),
        _cell(s.video_refs),
        s.reference_links,
        _cell(s.variants),
        _cell(s.planned_takes_override),
        s.notes,
        s.status,
    ]


def export_rows(scenes: Iterable[Scene]) -> Iterator[str]:
    """CSV text for a streaming response. Text a spreadsheet would run as a formula is neutralised on the
    way out (keter.exports) and restored on import."""
    return csv_stream(COLUMNS, (scene_row(scene) for scene in scenes))


@dataclass
class RowError:
    line: int
    message: str


class ImportRefused(DomainError):
    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__(
            f"{len(errors)} problem{'s' if len(errors) != 1 else ''} found: nothing was imported"
        )


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused([RowError(0, "The file is not UTF-8 text: save it as CSV (UTF-8) and try again")])


def _parse(text: str, ctx: PricingContext) -> list[Scene | RowError]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = REQUIRED - set(header)
    if missing:
        return [RowError(1, f"Missing column{'s' if len(missing) > 1 else ''}: {', '.join(sorted(missing))}")]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        return [RowError(1, f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")]
    results: list[Scene | RowError] = []
    for row in reader:
        line = reader.line_num
        if len(results) >= MAX_IMPORT_ROWS:
            return results + [RowError(line, f"A file can hold up to {MAX_IMPORT_ROWS:,} scenes")]
        if None in row:
            results.append(RowError(line, "More cells than columns"))
            continue
        data = {k: restore(v or "") for k, v in row.items() if k != "position"}
        for flag in ("fast_motion", "hdr", "upscale_4k", "sound_effects"):
            data[flag] = data.get(flag) or "0"
        data.setdefault("status", Scene.Status.PLANNED)
        data["status"] = data["status"] or Scene.Status.PLANNED
        form = SceneForm(data)
        if not form.is_valid():
            problems = "; ".join(f"{name}: {messages[0]}" for name, messages in form.errors.items())
            results.append(RowError(line, problems))
            continue
        try:
            entry = ctx.catalog.get(form.cleaned_data["model"])
        except DomainError as error:
            results.append(RowError(line, f"model: {error.message}"))
            continue
        scene = Scene(video_model=entry.model, quality=entry.spec.default_quality)
        apply_scene_values(scene, {k: v for k, v in form.cleaned_data.items() if k != "model"}, ctx)
        if not form.cleaned_data.get("quality"):
            scene.quality = entry.spec.default_quality
        price_scene(scene, ctx)
        if scene.estimate_error:
            results.append(RowError(line, f"{scene.estimate_error_field}: {scene.estimate_error}"))
            continue
        results.append(scene)
    if not results:
        return [RowError(2, "The file has a header but no scenes")]
    return results


@transaction.atomic
def scenes_import(*, project: Project, raw: bytes, ctx: PricingContext) -> list[Scene]:
    """Append every row of the file as a scene, or refuse the whole file with each bad row by line number."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportRefused([RowError(0, "The file is larger than 2 MB")])
    parsed = _parse(_decode(raw), ctx)
    errors = [r for r in parsed if isinstance(r, RowError)]
    if errors:
        raise ImportRefused(errors)
    start = next_scene_position(project)
    for offset, scene in enumerate(parsed):
        scene.project = project
        scene.position = start + offset
    return Scene.objects.bulk_create(parsed)
