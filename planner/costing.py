"""The cost engine: what a take, a scene and a project cost, in whole credits.

Pure Python with no Django import (keter.errors is plain Python too), so the catalog, the forms, the
`estimate` command and the property tests share one exact implementation. Prices are computed with
`Fraction` and rounded up once, at the end of each take, never along the way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from fractions import Fraction
from typing import Any

from keter.errors import DomainError

# Plans say "720p max", so qualities need one ranking across vendors.
QUALITY_ORDER = ("draft", "360p", "480p", "540p", "720p", "768p", "1024p", "1080p", "4K")

# Options a take can switch on. Audio is not one of them: it has a per-model default.
OPTION_LABELS = {
    "fast_motion": "fast motion",
    "hdr": "HDR",
    "upscale_4k": "4K upscale",
    "sound_effects": "sound effects",
    "off_peak": "off-peak pricing",
}
REFERENCE_KINDS = ("none", "image", "video")

# Beyond these a scene's inputs are a typo (a success rate of 0.0001), not a plan; they also bound the
# work of the exact take quantile to well under a second.
MAX_VARIANTS = 100
MAX_PLANNED_TAKES = 10_000


class CostError(DomainError, ValueError):
    """An input the engine refuses, with a sentence a producer understands and the input at fault.

    A DomainError (plain Python, no Django) so forms and views show it like any other refusal.
    """

    def __init__(self, message: str, *, field: str):
        super().__init__(message, field=field)


class UnsupportedTakeError(CostError):
    """The model cannot make this take: length, quality, audio, option or reference."""


class PlanLimitError(CostError):
    """The model could make this take, but the team's plan does not allow it."""


class PlanningInputError(CostError):
    """Variants, success rate, confidence, planned takes or contingency are out of range."""


class CatalogError(ValueError):
    """A malformed model spec or price rule: a mistake in the catalog, not in the producer's input."""


def quality_rank(quality: str) -> int:
    """Position of a quality in QUALITY_ORDER (higher is better); ValueError for an unknown one."""
    return QUALITY_ORDER.index(quality)


def _exact(value: Any) -> Fraction:
    # A float goes through its shortest repr, so 0.3 means 3/10 (what someone typed), not the double
    # nearest to it; that keeps boundary cases of the take quantile exact.
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal | Fraction):
        raise TypeError(f"not a number: {value!r}")
    try:
        return Fraction(repr(value) if isinstance(value, float) else value)
    except (ValueError, ZeroDivisionError, OverflowError) as error:
        raise TypeError(f"not a number: {value!r}") from error


def _catalog_number(value: Any, what: str) -> Fraction:
    try:
        number = _exact(value)
    except TypeError:
        raise CatalogError(f"{what} must be a number, not {value!r}") from None
    if number < 0:
        raise CatalogError(f"{what} must not be negative, not {value!r}")
    return number


def _json_number(value: Fraction | int) -> int | str:
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else str(value)


def _whole(value: Any, what: str) -> int:
    # JSON object keys are strings, so a tier length may arrive as "5".
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CatalogError(f"{what} must be a whole number of 1 or more, not {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class AddOn:
    """A flat charge for an option: per clip, or per started block of `per_started_seconds`."""

    credits: Fraction
    per_started_seconds: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "credits", _catalog_number(self.credits, "an add-on's credits"))
        if self.per_started_seconds is not None:
            _whole(self.per_started_seconds, "an add-on's block of seconds")

    def charge(self, billed_seconds: int) -> Fraction:
        if self.per_started_seconds is None:
            return self.credits
        return self.credits * -(-billed_seconds // self.per_started_seconds)


@dataclass(frozen=True, kw_only=True)
class PriceRule:
    """How one model is priced from some date on (the date lives with the catalog row).

    Exactly one of `per_second` (credits per second, by quality) or `tiers` (credits per clip length, by
    quality) is set. `multipliers` maps "audio" or an option name to a factor applied when it is on;
    `add_ons` maps one to a flat charge; `minimum` is the least a take costs. Numbers may be
    given as ints, Fractions, Decimals or strings ("12.5", "25/2"); they are kept as exact Fractions.
    """

    per_second: Mapping[str, Fraction] = field(default_factory=dict)
    tiers: Mapping[str, Mapping[int, Fraction]] = field(default_factory=dict)
    minimum: Fraction = Fraction(0)
    multipliers: Mapping[str, Fraction] = field(default_factory=dict)
    add_ons: Mapping[str, AddOn] = field(default_factory=dict)

    def __post_init__(self):
        # Normalised here, so a rule written in code and the same rule read back from JSON are equal.
        if bool(self.per_second) == bool(self.tiers):
            raise CatalogError("a price rule needs per-second rates or duration tiers (exactly one of them)")
        unknown = {*self.multipliers, *self.add_ons} - {"audio", *OPTION_LABELS}
        if unknown:
            raise CatalogError(f"unknown multipliers or add-ons: {', '.join(sorted(unknown))}")
        if any(not isinstance(add_on, AddOn) for add_on in self.add_ons.values()):
            raise CatalogError("add-ons must be AddOn values")
        normalised = {
            "per_second": {q: _catalog_number(rate, f"the {q} rate") for q, rate in self.per_second.items()},
            "tiers": {
                q: dict(
                    sorted(
                        (_whole(seconds, f"a {q} tier length"), _catalog_number(credits, f"a {q} tier price"))
                        for seconds, credits in prices.items()
                    )
                )
                for q, prices in self.tiers.items()
            },
            "minimum": _catalog_number(self.minimum, "the minimum"),
            "multipliers": {
                n: _catalog_number(f, f"the {n} multiplier") for n, f in self.multipliers.items()
            },
            "add_ons": dict(self.add_ons),
        }
        if any(not prices for prices in normalised["tiers"].values()):
            raise CatalogError("every tier-priced quality needs at least one tier")
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceRule:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise CatalogError(f"unknown price rule keys: {', '.join(sorted(unknown))}")
        try:
            add_ons = {name: AddOn(**add_on) for name, add_on in data.get("add_ons", {}).items()}
            return cls(**(dict(data) | {"add_ons": add_ons}))
        except (TypeError, ValueError, AttributeError) as error:
            if isinstance(error, CatalogError):
                raise
            raise CatalogError(f"malformed price rule: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.per_second:
            data["per_second"] = {q: _json_number(rate) for q, rate in self.per_second.items()}
        if self.tiers:
            data["tiers"] = {
                q: {str(seconds): _json_number(credits) for seconds, credits in prices.items()}
                for q, prices in self.tiers.items()
            }
        if self.minimum:
            data["minimum"] = _json_number(self.minimum)
        if self.multipliers:
            data["multipliers"] = {n: _json_number(f) for n, f in self.multipliers.items()}
        if self.add_ons:
            data["add_ons"] = {
                n: {"credits": _json_number(a.credits)}
                | ({} if a.per_started_seconds is None else {"per_started_seconds": a.per_started_seconds})
                for n, a in self.add_ons.items()
            }
        return data


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What the engine needs to know about a video model, apart from its price.

    Lengths are either a discrete set (`lengths`) or a range `min_seconds`..`max_seconds`; a tier-priced
    model uses a range up to its largest tier. `quality_max_seconds` caps a quality below the model's
    longest clip. The first quality is the default.
    """

    slug: str
    name: str
    qualities: tuple[str, ...]
    min_seconds: int = 1
    max_seconds: int | None = None
    lengths: tuple[int, ...] = ()
    quality_max_seconds: Mapping[str, int] = field(default_factory=dict)
    required_reference: str = "none"
    supports_audio: bool = False
    audio_by_default: bool = False
    options: tuple[str, ...] = ()
    success_rate: float

    def __post_init__(self):
        # JSON gives lists and the database may give a Decimal: normalise so equal specs compare equal.
        for name in ("qualities", "lengths", "options"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "quality_max_seconds", dict(self.quality_max_seconds))
        object.__setattr__(self, "success_rate", float(self.success_rate))
        problems = []
        if not self.qualities or any(q not in QUALITY_ORDER for q in self.qualities):
            problems.append(f"qualities must come from {', '.join(QUALITY_ORDER)}")
        if bool(self.lengths) == (self.max_seconds is not None):
            problems.append("give lengths or max_seconds (exactly one of them)")
        elif self.lengths and (min(self.lengths) < 1 or list(self.lengths) != sorted(set(self.lengths))):
            problems.append("lengths must be whole seconds, ascending, without repeats")
        elif self.max_seconds is not None and not 1 <= self.min_seconds <= self.max_seconds:
            problems.append("min_seconds must be 1 or more and not above max_seconds")
        if not set(self.quality_max_seconds) <= set(self.qualities):
            problems.append("quality_max_seconds names a quality the model does not offer")
        if self.required_reference not in REFERENCE_KINDS:
            problems.append(f"required_reference must be one of {', '.join(REFERENCE_KINDS)}")
        if self.audio_by_default and not self.supports_audio:
            problems.append("audio cannot be on by default for a model without audio")
        if not set(self.options) <= set(OPTION_LABELS):
            problems.append(f"options must come from {', '.join(OPTION_LABELS)}")
        if not 0 < self.success_rate <= 1:
            problems.append("success_rate must be above 0 and at most 1")
        if problems:
            raise CatalogError(f"{self.slug}: {'; '.join(problems)}")

    @property
    def default_quality(self) -> str:
        return self.qualities[0]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from its dict. Keys that are not spec fields are ignored, so a whole catalog entry
        (spec fields plus vendor, price rule, ...) can be passed."""
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except (TypeError, ValueError) as error:
            if isinstance(error, CatalogError):
                raise
            raise CatalogError(f"malformed model spec: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("qualities", "lengths", "options"):
            data[name] = list(data[name])
        return data


@dataclass(frozen=True, kw_only=True)
class TakeParams:
    """One take as a producer asks for it; `quality` and `audio` left as None take the model's default."""

    seconds: int
    quality: str | None = None
    audio: bool | None = None
    fast_motion: bool = False
    hdr: bool = False
    upscale_4k: bool = False
    sound_effects: bool = False
    off_peak: bool = False
    image_refs: int = 0
    video_refs: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TakeParams:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TakeCost:
    credits: int
    billed_seconds: int
    quality: str
    audio: bool


def _or_list(seconds: Iterable[int]) -> str:
    labels = [f"{s} s" for s in seconds]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


def _offered_quality(spec: ModelSpec, params: TakeParams) -> str:
    quality = spec.default_quality if params.quality is None else params.quality
    if quality not in spec.qualities:
        raise UnsupportedTakeError(f"{quality} is not offered by {spec.name}", field="quality")
    return quality


def _check_length(spec: ModelSpec, quality: str, seconds: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise UnsupportedTakeError("the length must be a whole number of seconds", field="seconds")
    if seconds < 1:
        raise UnsupportedTakeError("a clip must be at least 1 s long", field="seconds")
    cap = spec.quality_max_seconds.get(quality)
    at_quality = "" if cap is None else f"{quality} "
    if spec.lengths:
        allowed = [n for n in spec.lengths if cap is None or n <= cap]
        if seconds not in allowed:
            raise UnsupportedTakeError(
                f"{spec.name} makes {_or_list(allowed)} {at_quality}clips, not {seconds} s", field="seconds"
            )
        return
    longest = spec.max_seconds if cap is None else min(cap, spec.max_seconds)
    if seconds > longest:
        raise UnsupportedTakeError(
            f"{spec.name} makes {at_quality}clips up to {longest} s, not {seconds} s", field="seconds"
        )
    if seconds < spec.min_seconds:
        raise UnsupportedTakeError(
            f"{spec.name} makes clips of at least {spec.min_seconds} s, not {seconds} s", field="seconds"
        )


def _check_extras(spec: ModelSpec, params: TakeParams) -> bool:
    """Validate audio, options and references; return whether audio is on."""
    audio = spec.audio_by_default if params.audio is None else params.audio
    if audio and not spec.supports_audio:
        raise UnsupportedTakeError(f"{spec.name} does not make audio", field="audio")
    for option, label in OPTION_LABELS.items():
        if getattr(params, option) and option not in spec.options:
            raise UnsupportedTakeError(f"{spec.name} does not offer {label}", field=option)
    if params.image_refs < 0 or params.video_refs < 0:
        raise UnsupportedTakeError("the number of references cannot be negative", field="references")
    if spec.required_reference == "image" and params.image_refs < 1:
        raise UnsupportedTakeError("this model needs an image reference", field="references")
    if spec.required_reference == "video" and params.video_refs < 1:
        raise UnsupportedTakeError("this model needs a video reference", field="references")
    return audio


def take_cost(spec: ModelSpec, rule: PriceRule, params: TakeParams) -> TakeCost:
    """What one take costs, in whole credits, and how many seconds are billed.

    The clip price (rate × seconds, or the smallest tier at or above the length) is multiplied by every
    multiplier that is on, then the flat add-ons are added: they are not multiplied (PixVerse's fast motion
    doubles the clip, not its sound effects), and a per-block add-on counts blocks of the billed length. The
    minimum charge is a floor under that total, and the result is rounded up once, at the end.
    """
    quality = _offered_quality(spec, params)
    _check_length(spec, quality, params.seconds)
    audio = _check_extras(spec, params)

    if rule.per_second:
        if quality not in rule.per_second:
            raise CatalogError(f"{spec.slug}: no per-second rate for {quality}")
        billed_seconds = params.seconds
        price = Fraction(rule.per_second[quality]) * billed_seconds
    else:
        if quality not in rule.tiers:
            raise CatalogError(f"{spec.slug}: no duration tiers for {quality}")
        tiers = rule.tiers[quality]
        billed_seconds = min((tier for tier in tiers if tier >= params.seconds), default=None)
        if billed_seconds is None:
            raise UnsupportedTakeError(
                f"{spec.name} makes {quality} clips up to {max(tiers)} s, not {params.seconds} s",
                field="seconds",
            )
        price = Fraction(tiers[billed_seconds])

    switched_on = [option for option in OPTION_LABELS if getattr(params, option)]
    if audio:
        switched_on.append("audio")
    for name in switched_on:
        price *= rule.multipliers.get(name, 1)
    for name in switched_on:
        if name in rule.add_ons:
            price += rule.add_ons[name].charge(billed_seconds)
    credits = math.ceil(max(price, rule.minimum))
    return TakeCost(credits=credits, billed_seconds=billed_seconds, quality=quality, audio=audio)


def check_plan(
    spec: ModelSpec, params: TakeParams, *, max_quality: str | None, max_seconds: int | None
) -> None:
    """Refuse a take the team's plan does not allow; None means no limit. A 4K upscale is 4K output."""
    quality = _offered_quality(spec, params)
    if max_quality is not None:
        if quality_rank(quality) > quality_rank(max_quality):
            raise PlanLimitError(f"your plan allows up to {max_quality}", field="quality")
        if params.upscale_4k and quality_rank("4K") > quality_rank(max_quality):
            raise PlanLimitError(f"your plan allows up to {max_quality}", field="upscale_4k")
    if max_seconds is not None and params.seconds > max_seconds:
        raise PlanLimitError(f"your plan allows clips up to {max_seconds} s", field="seconds")


def _variants(variants: Any) -> int:
    if isinstance(variants, bool) or not isinstance(variants, int):
        raise PlanningInputError("variants must be a whole number", field="variants")
    if variants < 1:
        raise PlanningInputError("a scene needs at least 1 variant", field="variants")
    if variants > MAX_VARIANTS:
        raise PlanningInputError(f"a scene can plan up to {MAX_VARIANTS} variants", field="variants")
    return variants


def _success_rate(success_rate: Any) -> Fraction:
    try:
        p = _exact(success_rate)
    except TypeError:
        raise PlanningInputError("the success rate must be a number", field="success_rate") from None
    if not 0 < p <= 1:
        raise PlanningInputError(
            f"the success rate must be above 0 and at most 1 (0.3 means 30%), not {success_rate}",
            field="success_rate",
        )
    return p


def _confidence(confidence: Any) -> Fraction:
    try:
        c = _exact(confidence)
    except TypeError:
        raise PlanningInputError("the confidence level must be a number", field="confidence") from None
    if not 0 < c < 1:
        raise PlanningInputError(
            f"the confidence level must be above 0 and below 1 (0.9 means 90%), not {confidence}",
            field="confidence",
        )
    return c


def expected_takes(variants: int, success_rate: Any) -> float:
    """Takes needed on average to get `variants` keepers: variants / success rate."""
    return float(_variants(variants) / _success_rate(success_rate))


def planned_takes(variants: int, success_rate: Any, confidence: Any = 0.9) -> int:
    """The fewest takes that give at least `variants` keepers with probability ≥ `confidence`.

    A negative-binomial quantile, decided in exact integer arithmetic so a boundary case (p = 0.5, one
    variant, confidence 0.75: exactly 2 takes) never slips to the next n by float drift. With p = a/b and
    q = b − a, n takes fall short when fewer than `variants` succeed, and n is enough when
    Σ_{j<variants} C(n, j)·a^j·q^(n−j) ≤ (1 − confidence)·b^n. That test is monotone in n, so the search
    doubles n and then bisects: a few dozen exact sums, each of `variants` terms.
    """
    return _planned_takes(_variants(variants), _success_rate(success_rate), _confidence(confidence))


# A project prices hundreds of scenes that share a few (variants, rate, confidence) triples: remember them.
@functools.lru_cache(maxsize=4096)
def _planned_takes(k: int, p: Fraction, c: Fraction) -> int:
    if p == 1:
        return k
    a, b = p.numerator, p.denominator
    q = b - a
    allowed_shortfall = c.denominator - c.numerator

    def is_enough(n: int) -> bool:
        term = q**n  # j = 0
        shortfall = term
        for j in range(1, k):
            # C(n,j)a^j q^(n-j) from the previous term; the division is exact.
            term = term * (n - j + 1) * a // (j * q)
            shortfall += term
        return shortfall * c.denominator <= allowed_shortfall * b**n

    if is_enough(k):
        return k
    low, high = k, min(2 * k, MAX_PLANNED_TAKES)
    while not is_enough(high):
        if high == MAX_PLANNED_TAKES:
            raise PlanningInputError(
                f"this scene would need more than {MAX_PLANNED_TAKES:,} takes; check the success rate",
                field="success_rate",
            )
        low, high = high, min(2 * high, MAX_PLANNED_TAKES)
    while high - low > 1:  # not enough at low, enough at high
        middle = (low + high) // 2
        low, high = (low, middle) if is_enough(middle) else (middle, high)
    return high


@dataclass(frozen=True)
class SceneEstimate:
    expected_takes: float
    planned_takes: int
    expected_credits: int
    planned_credits: int


def scene_estimate(
    *,
    credits_per_take: int,
    variants: int,
    success_rate: Any,
    confidence: Any = 0.9,
    planned_takes_override: int | None = None,
) -> SceneEstimate:
    """Expected and planned takes and credits for a scene that wants `variants` keepers.

    Expected credits are ceil(credits_per_take × variants / success rate), computed exactly. A producer's
    override of the planned takes wins over the quantile.
    """
    if isinstance(credits_per_take, bool) or not isinstance(credits_per_take, int) or credits_per_take < 0:
        raise PlanningInputError("credits per take must be a whole number of 0 or more", field="credits")
    k = _variants(variants)
    p = _success_rate(success_rate)
    if planned_takes_override is None:
        planned = planned_takes(k, p, confidence)
    elif isinstance(planned_takes_override, bool) or not isinstance(planned_takes_override, int):
        raise PlanningInputError("planned takes must be a whole number", field="planned_takes")
    elif planned_takes_override < 1:
        raise PlanningInputError("planned takes must be at least 1", field="planned_takes")
    else:
        planned = planned_takes_override
    return SceneEstimate(
        expected_takes=float(k / p),
        planned_takes=planned,
        expected_credits=math.ceil(credits_per_take * k / p),
        planned_credits=credits_per_take * planned,
    )


@dataclass(frozen=True)
class ProjectTotals:
    expected_credits: int
    planned_credits: int
    contingency_credits: int
    total_credits: int


def project_totals(
    scene_estimates: Iterable[SceneEstimate], *, contingency_percent: Any = 0
) -> ProjectTotals:
    """Sum of the scenes, plus a contingency of ceil(planned × percent / 100) on top of the planned."""
    estimates = list(scene_estimates)
    return totals_from_sums(
        expected_credits=sum(e.expected_credits for e in estimates),
        planned_credits=sum(e.planned_credits for e in estimates),
        contingency_percent=contingency_percent,
    )


def totals_from_sums(
    *, expected_credits: int, planned_credits: int, contingency_percent: Any = 0
) -> ProjectTotals:
    """Project totals from scene sums already added up (by SQL, for instance)."""
    try:
        percent = _exact(contingency_percent)
    except TypeError:
        raise PlanningInputError("the contingency must be a number", field="contingency_percent") from None
    if percent < 0:
        raise PlanningInputError("the contingency must be 0% or more", field="contingency_percent")
    contingency = math.ceil(planned_credits * percent / 100)
    return ProjectTotals(
        expected_credits=expected_credits,
        planned_credits=planned_credits,
        contingency_credits=contingency,
        total_credits=planned_credits + contingency,
    )
