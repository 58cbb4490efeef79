"""One estimate of a take and of the takes a scene needs, as the `estimate` command and the API ask for it.

Both read the same string parameters (a query string, or the command's options turned into one), so bad
input gets the same message on either.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from keter.errors import DomainError
from planner import costing
from planner.catalog import Catalog

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
MAX_SECONDS = 600  # no model makes clips this long; anything above is a typo


class EstimateInputError(DomainError):
    pass


@dataclass(frozen=True)
class EstimateRequest:
    model: str
    params: costing.TakeParams
    variants: int
    success_rate: float | None
    confidence: float


@dataclass(frozen=True)
class Estimate:
    model: str
    quality: str
    audio: bool
    billed_seconds: int
    credits_per_take: int
    success_rate: float
    confidence: float
    variants: int
    expected_takes: float
    planned_takes: int
    expected_credits: int
    planned_credits: int

    def as_json(self) -> dict:
        """The public shape: exactly these keys, credits as integers."""
        return {
            "model": self.model,
            "billed_seconds": self.billed_seconds,
            "credits_per_take": self.credits_per_take,
            "expected_takes": round(self.expected_takes, 4),
            "planned_takes": self.planned_takes,
            "expected_credits": self.expected_credits,
            "planned_credits": self.planned_credits,
        }


def _whole(data: Mapping[str, str], name: str, label: str, default: int | None = None) -> int:
    raw = (data.get(name) or "").strip()
    if not raw:
        if default is None:
            raise EstimateInputError(f"{label} is required", field=name)
        return default
    try:
        return int(raw)
    except ValueError:
        raise EstimateInputError(f"{label} must be a whole number, not {raw!r}", field=name) from None


def _fraction(data: Mapping[str, str], name: str, label: str) -> float | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise EstimateInputError(
            f"{label} must be a number between 0 and 1, not {raw!r}", field=name
        ) from None
    if not 0 < value <= 1:
        raise EstimateInputError(f"{label} must be above 0 and at most 1, not {raw}", field=name)
    return value


def _flag(data: Mapping[str, str], name: str) -> bool | None:
    raw = (data.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise EstimateInputError(f"{name.replace('_', ' ')} must be on or off, not {raw!r}", field=name)


def _choice(data: Mapping[str, str], name: str, allowed: dict[str, bool]) -> bool:
    raw = (data.get(name) or "").strip().lower()
    if raw not in allowed:
        choices = " or ".join(repr(k) for k in allowed if k)
        raise EstimateInputError(f"{name} must be {choices}, not {raw!r}", field=name)
    return allowed[raw]


def parse_estimate_query(data: Mapping[str, str], *, catalog: Catalog) -> EstimateRequest:
    model = (data.get("model") or "").strip()
    entry = catalog.get(model)
    seconds = _whole(data, "seconds", "seconds")
    if not 0 < seconds <= MAX_SECONDS:
        raise EstimateInputError(
            f"seconds must be between 1 and {MAX_SECONDS}, not {seconds}", field="seconds"
        )
    # An estimate assumes the producer brings the reference the model needs unless told otherwise.
    needs = entry.spec.required_reference
    params = costing.TakeParams(
        seconds=seconds,
        quality=(data.get("quality") or "").strip() or None,
        audio=_flag(data, "audio"),
        fast_motion=_choice(data, "motion", {"": False, "normal": False, "fast": True}),
        hdr=bool(_flag(data, "hdr")),
        upscale_4k=_choice(data, "upscale", {"": False, "none": False, "4k": True}),
        sound_effects=bool(_flag(data, "sound_effects")),
        off_peak=bool(_flag(data, "off_peak")),
        image_refs=_whole(data, "image_refs", "image references", default=int(needs == "image")),
        video_refs=_whole(data, "video_refs", "video references", default=int(needs == "video")),
    )
    return EstimateRequest(
        model=model,
        params=params,
        variants=_whole(data, "variants", "variants", default=1),
        success_rate=_fraction(data, "success_rate", "the success rate"),
        confidence=_fraction(data, "confidence", "the confidence") or 0.9,
    )


def estimate(request: EstimateRequest, *, catalog: Catalog) -> Estimate:
    entry = catalog.get(request.model)
    take = entry.take_cost(request.params)
    success_rate = request.success_rate or entry.spec.success_rate
    scene = costing.scene_estimate(
        credits_per_take=take.credits,
        variants=request.variants,
        success_rate=success_rate,
        confidence=request.confidence,
    )
    return Estimate(
        model=entry.model.slug,
        quality=take.quality,
        audio=take.audio,
        billed_seconds=take.billed_seconds,
        credits_per_take=take.credits,
        success_rate=success_rate,
        confidence=request.confidence,
        variants=request.variants,
        expected_takes=scene.expected_takes,
        planned_takes=scene.planned_takes,
        expected_credits=scene.expected_credits,
        planned_credits=scene.planned_credits,
    )


def estimate_from_query(data: Mapping[str, str], *, catalog: Catalog | None = None) -> Estimate:
    catalog = catalog or Catalog.load()
    return estimate(parse_estimate_query(data, catalog=catalog), catalog=catalog)
