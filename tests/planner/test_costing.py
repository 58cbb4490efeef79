"""The cost engine, specified with the published prices of shared/reference/video-pricing.md."""

import json
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.catalog_data import MODELS
from planner.costing import (
    AddOn,
    CatalogError,
    CostError,
    ModelSpec,
    PlanLimitError,
    PlanningInputError,
    PriceRule,
    SceneEstimate,
    TakeParams,
    UnsupportedTakeError,
    check_plan,
    expected_takes,
    planned_takes,
    project_totals,
    quality_rank,
    scene_estimate,
    take_cost,
)

SEED = {entry["slug"]: entry for entry in MODELS}


def seed_model(slug):
    entry = SEED[slug]
    return ModelSpec.from_dict(entry), PriceRule.from_dict(entry["price_rule"])


def a_take(spec, seconds, **choices):
    """A take with the reference the model needs, so a test only says what it is about."""
    needed = {"image": {"image_refs": 1}, "video": {"video_refs": 1}}.get(spec.required_reference, {})
    return TakeParams(seconds=seconds, **(needed | choices))


def cost(slug, seconds, **choices):
    spec, rule = seed_model(slug)
    return take_cost(spec, rule, a_take(spec, seconds, **choices))


def refusal(slug, seconds, **choices):
    with pytest.raises(CostError) as raised:
        cost(slug, seconds, **choices)
    return raised.value


# (slug, quality, seconds, audio, published credits): at least one length for every quality of every model.
PUBLISHED = [
    ("runway-gen4-turbo", "720p", 5, None, 25),
    ("runway-gen4-turbo", "720p", 10, None, 50),
    ("runway-gen4", "720p", 10, None, 120),
    ("runway-gen45", "720p", 2, None, 24),
    ("runway-gen45", "720p", 10, None, 120),
    ("runway-gen3-alpha", "720p", 10, None, 100),
    ("runway-gen3-alpha-turbo", "720p", 5, None, 25),
    ("runway-aleph", "720p", 5, None, 75),
    ("runway-act-one", "720p", 10, None, 100),
    ("runway-act-one-turbo", "720p", 30, None, 150),
    ("veo-3-1", "720p", 8, True, 320),
    ("veo-3-1", "1080p", 8, True, 320),
    ("veo-3-1", "4K", 8, True, 480),
    ("veo-3-1", "720p", 4, False, 80),
    ("veo-3-1", "4K", 8, False, 240),
    ("veo-3-1-fast", "720p", 8, True, 80),
    ("veo-3-1-fast", "1080p", 8, True, 96),
    ("veo-3-1-fast", "4K", 8, True, 240),
    ("kling-2-6", "1080p", 5, False, 35),
    ("kling-2-6", "1080p", 10, True, 140),
    ("wan-2-6", "480p", 5, None, 25),
    ("wan-2-6", "720p", 10, None, 100),
    ("wan-2-6", "1080p", 10, None, 150),
    ("sora-2", "720p", 12, None, 120),
    ("sora-2-pro", "720p", 4, None, 120),
    ("sora-2-pro", "1024p", 12, None, 600),
    ("luma-ray2", "720p", 5, None, 160),
    ("luma-ray2", "720p", 10, None, 320),
    ("luma-ray2", "1080p", 5, None, 170),
    ("luma-ray2", "1080p", 10, None, 340),
    ("luma-ray2-flash", "720p", 5, None, 55),
    ("luma-ray2-flash", "720p", 10, None, 110),
    ("luma-ray2-flash", "1080p", 5, None, 65),
    ("luma-ray2-flash", "1080p", 10, None, 130),
    ("luma-ray3", "draft", 5, None, 60),
    ("luma-ray3", "draft", 20, None, 240),
    ("luma-ray3", "540p", 10, None, 320),
    ("luma-ray3", "540p", 15, None, 480),
    ("pixverse-v5", "360p", 5, None, 45),
    ("pixverse-v5", "540p", 8, None, 90),
    ("pixverse-v5", "720p", 8, None, 120),
    ("pixverse-v5", "1080p", 5, None, 120),
    ("pixverse-v4-5", "360p", 8, None, 90),
    ("pixverse-v4-5", "540p", 5, None, 45),
    ("pixverse-v4-5", "720p", 5, None, 60),
    ("pixverse-v4-5", "1080p", 8, None, 240),
    ("kling-2-5-turbo-pro", "1080p", 5, None, 35),
    ("kling-2-5-turbo-pro", "1080p", 10, None, 70),
    ("hailuo-02", "768p", 6, None, 28),
    ("hailuo-02", "768p", 10, None, 56),
    ("hailuo-02", "1080p", 6, None, 49),
]


@pytest.mark.parametrize(("slug", "quality", "seconds", "audio", "credits"), PUBLISHED)
def test_every_seed_model_costs_its_published_price(slug, quality, seconds, audio, credits):
    assert cost(slug, seconds, quality=quality, audio=audio).credits == credits


def test_the_published_price_table_covers_every_quality_of_every_seed_model():
    covered = {(slug, quality) for slug, quality, *_ in PUBLISHED}
    assert covered == {(entry["slug"], q) for entry in MODELS for q in entry["qualities"]}


def test_it_bills_a_per_second_model_by_the_second():
    assert cost("runway-gen4-turbo", 10).credits == 50
    assert cost("runway-gen4-turbo", 10).billed_seconds == 10


def test_it_charges_the_minimum_when_a_take_would_cost_less():
    assert cost("runway-act-one", 3).credits == 50
    assert cost("runway-act-one", 6).credits == 60
    assert cost("runway-act-one-turbo", 3).credits == 25


def test_it_bills_a_length_between_tiers_as_the_next_tier_up():
    take = cost("luma-ray2", 7, quality="1080p")
    assert take.credits == 340
    assert take.billed_seconds == 10
    assert cost("luma-ray2", 1).credits == 160


def test_it_adds_the_4k_upscale_once_per_clip():
    assert cost("luma-ray2", 5, quality="720p", upscale_4k=True).credits == 180
    assert cost("luma-ray2", 10, quality="720p", upscale_4k=True).credits == 340


def test_it_multiplies_the_clip_by_four_for_hdr():
    assert cost("luma-ray3", 5, quality="540p", hdr=True).credits == 640


def test_it_doubles_the_clip_for_fast_motion_but_not_the_sound_effects():
    assert (
        cost("pixverse-v5", 8, quality="720p", fast_motion=True, sound_effects=True).credits
        == 120 * 2 + 10 * 2
    )


def test_it_charges_sound_effects_per_started_5_seconds_of_the_billed_clip():
    assert cost("pixverse-v5", 5, quality="720p", sound_effects=True).credits == 60 + 10
    assert cost("pixverse-v5", 6, quality="720p", sound_effects=True).credits == 120 + 20
    spec = ModelSpec(
        slug="ten",
        name="Ten",
        qualities=("720p",),
        max_seconds=10,
        options=("sound_effects",),
        success_rate=0.5,
    )
    rule = PriceRule(
        tiers={"720p": {10: 100}}, add_ons={"sound_effects": AddOn(credits=10, per_started_seconds=5)}
    )
    assert take_cost(spec, rule, TakeParams(seconds=3, sound_effects=True)).credits == 100 + 20


def test_veo_prices_audio_at_twice_the_silent_rate_and_turns_it_on_by_default():
    assert cost("veo-3-1", 8, quality="4K", audio=True).credits == 480
    assert cost("veo-3-1", 8, quality="4K", audio=False).credits == 240
    assert cost("veo-3-1", 8, quality="4K").credits == 480
    assert cost("veo-3-1", 8).audio is True


def test_kling_2_6_charges_14_credits_a_second_with_audio_and_7_without():
    assert cost("kling-2-6", 5, audio=True).credits == 70
    assert cost("kling-2-6", 5).credits == 35


def test_it_takes_the_first_quality_of_the_model_when_none_is_chosen():
    assert cost("wan-2-6", 5).quality == "480p"
    assert cost("wan-2-6", 5).credits == 25


def test_it_rounds_up_once_per_take_not_per_second_or_per_step():
    spec = ModelSpec(slug="thirds", name="Thirds", qualities=("720p",), max_seconds=10, success_rate=0.5)
    assert take_cost(spec, PriceRule(per_second={"720p": Fraction(1, 3)}), TakeParams(seconds=3)).credits == 1
    assert take_cost(spec, PriceRule(per_second={"720p": "0.35"}), TakeParams(seconds=3)).credits == 2
    spec = ModelSpec(
        slug="steps",
        name="Steps",
        qualities=("720p",),
        max_seconds=10,
        supports_audio=True,
        options=("off_peak",),
        success_rate=0.5,
    )
    rule = PriceRule(per_second={"720p": 1}, multipliers={"off_peak": Fraction(1, 2), "audio": 3})
    # 1 × ½ × 3 = 1.5 → 2; rounding after the off-peak step would give 1 × 3 = 3.
    assert take_cost(spec, rule, TakeParams(seconds=1, off_peak=True, audio=True)).credits == 2


def test_it_applies_an_off_peak_multiplier_and_keeps_the_minimum_as_a_floor():
    spec = ModelSpec(
        slug="night",
        name="Night",
        qualities=("720p",),
        max_seconds=10,
        options=("off_peak",),
        success_rate=0.5,
    )
    rule = PriceRule(per_second={"720p": 10}, minimum=30, multipliers={"off_peak": Fraction(1, 2)})
    assert take_cost(spec, rule, TakeParams(seconds=10, off_peak=True)).credits == 50
    assert take_cost(spec, rule, TakeParams(seconds=4, off_peak=True)).credits == 30


def test_it_refuses_a_length_the_model_does_not_make():
    error = refusal("runway-gen4-turbo", 7)
    assert error.message == "Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s"
    assert error.field == "seconds"
    assert refusal("veo-3-1", 5).message == "Google Veo 3.1 Standard makes 4 s, 6 s or 8 s clips, not 5 s"


def test_it_refuses_a_length_above_the_largest_tier():
    assert refusal("luma-ray2", 12).message == "Luma Ray2 makes clips up to 10 s, not 12 s"


def test_it_refuses_a_length_beyond_the_tiers_even_when_the_spec_allows_it():
    spec = ModelSpec(slug="short", name="Short", qualities=("720p",), max_seconds=12, success_rate=0.5)
    with pytest.raises(UnsupportedTakeError) as raised:
        take_cost(spec, PriceRule(tiers={"720p": {5: 10, 10: 20}}), TakeParams(seconds=12))
    assert raised.value.message == "Short makes 720p clips up to 10 s, not 12 s"


def test_it_refuses_hailuo_02_at_1080p_beyond_6_seconds():
    error = refusal("hailuo-02", 10, quality="1080p")
    assert error.message == "MiniMax Hailuo-02 makes 1080p clips up to 6 s, not 10 s"
    assert cost("hailuo-02", 10, quality="768p").credits == 56


def test_it_refuses_a_length_below_the_models_shortest():
    assert refusal("runway-gen45", 1).message == "Runway Gen-4.5 makes clips of at least 2 s, not 1 s"


@pytest.mark.parametrize("seconds", [0, -5])
def test_it_refuses_a_clip_of_no_length(seconds):
    error = refusal("luma-ray2", seconds)
    assert error.message == "a clip must be at least 1 s long"
    assert error.field == "seconds"


def test_it_refuses_a_quality_the_model_does_not_offer():
    error = refusal("runway-gen4-turbo", 5, quality="1080p")
    assert error.message == "1080p is not offered by Runway Gen-4 Turbo"
    assert error.field == "quality"


def test_it_refuses_a_take_without_the_reference_the_model_needs():
    spec, rule = seed_model("runway-gen4-turbo")
    with pytest.raises(UnsupportedTakeError) as raised:
        take_cost(spec, rule, TakeParams(seconds=5))
    assert raised.value.message == "this model needs an image reference"
    assert raised.value.field == "references"
    spec, rule = seed_model("runway-aleph")
    with pytest.raises(UnsupportedTakeError, match="this model needs a video reference"):
        take_cost(spec, rule, TakeParams(seconds=5, image_refs=2))


def test_it_refuses_audio_and_options_the_model_does_not_offer():
    assert refusal("runway-gen4", 5, audio=True).message == "Runway Gen-4 does not make audio"
    error = refusal("luma-ray2", 5, fast_motion=True)
    assert error.message == "Luma Ray2 does not offer fast motion"
    assert error.field == "fast_motion"


def test_every_cost_error_is_a_value_error_with_a_message_and_a_field():
    error = refusal("runway-gen4-turbo", 7)
    assert isinstance(error, ValueError)
    assert str(error) == error.message


def test_it_refuses_a_quality_above_the_plan():
    spec, _ = seed_model("veo-3-1")
    with pytest.raises(PlanLimitError) as raised:
        check_plan(spec, TakeParams(seconds=8, quality="1080p"), max_quality="720p", max_seconds=None)
    assert raised.value.message == "your plan allows up to 720p"
    assert raised.value.field == "quality"


def test_it_counts_a_4k_upscale_against_the_plans_quality():
    spec, _ = seed_model("luma-ray2")
    with pytest.raises(PlanLimitError, match="your plan allows up to 720p"):
        check_plan(spec, TakeParams(seconds=5, upscale_4k=True), max_quality="720p", max_seconds=None)


def test_it_refuses_a_clip_longer_than_the_plan_allows():
    spec, _ = seed_model("runway-act-one")
    with pytest.raises(PlanLimitError, match="your plan allows clips up to 10 s"):
        check_plan(spec, TakeParams(seconds=20), max_quality="720p", max_seconds=10)


def test_it_lets_a_take_within_the_plan_through():
    spec, _ = seed_model("veo-3-1")
    assert check_plan(spec, TakeParams(seconds=8), max_quality="720p", max_seconds=10) is None
    assert check_plan(spec, TakeParams(seconds=8, quality="4K"), max_quality=None, max_seconds=None) is None


def test_qualities_rank_from_draft_to_4k():
    assert quality_rank("draft") < quality_rank("540p") < quality_rank("720p") < quality_rank("768p")
    assert quality_rank("1024p") < quality_rank("1080p") < quality_rank("4K")


def test_a_price_rule_round_trips_through_json():
    rule = PriceRule(
        per_second={"720p": Fraction(25, 2), "1080p": 15},
        minimum=50,
        multipliers={"audio": 2, "off_peak": Fraction(1, 2)},
        add_ons={"sound_effects": AddOn(credits=10, per_started_seconds=5), "upscale_4k": AddOn(credits=20)},
    )
    assert PriceRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule
    assert PriceRule.from_dict({"per_second": {"720p": "12.5"}}).per_second["720p"] == Fraction(25, 2)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"per_second": {"720p": 5}, "tiers": {"720p": {"5": 25}}},
        {"per_second": {"720p": -5}},
        {"per_second": {"720p": "five"}},
        {"tiers": {"720p": {"five": 25}}},
        {"tiers": {"720p": {}}},
        {"per_second": {"720p": 5}, "multipliers": {"turbo": 2}},
        {"per_second": {"720p": 5}, "add_ons": {"upscale_4k": {"price": 20}}},
        {"per_second": {"720p": 5}, "rate": 5},
    ],
)
def test_a_malformed_price_rule_is_a_catalog_error_not_a_crash(data):
    with pytest.raises(CatalogError):
        PriceRule.from_dict(data)


def test_a_malformed_model_spec_is_a_catalog_error():
    with pytest.raises(CatalogError, match="exactly one of them"):
        ModelSpec.from_dict({"slug": "x", "name": "X", "qualities": ["720p"], "success_rate": 0.5})
    with pytest.raises(CatalogError, match="qualities must come from"):
        ModelSpec(slug="x", name="X", qualities=("8K",), max_seconds=5, success_rate=0.5)


def test_a_model_spec_and_a_take_round_trip_through_json():
    spec, _ = seed_model("hailuo-02")
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    take = TakeParams(seconds=8, quality="720p", audio=True, fast_motion=True, image_refs=2)
    assert TakeParams.from_dict(json.loads(json.dumps(take.to_dict()))) == take


def test_expected_takes_are_variants_over_the_success_rate():
    assert expected_takes(3, 0.3) == 10.0
    assert expected_takes(1, 0.25) == 4.0


def test_planned_takes_hit_an_exact_boundary_without_float_drift():
    # 2 takes at p = 0.5 give at least one keeper with probability exactly 0.75.
    assert planned_takes(1, 0.5, 0.75) == 2
    assert planned_takes(2, 0.5, 0.5) == 3


def test_planned_takes_equal_the_variants_when_every_take_succeeds():
    assert planned_takes(4, 1) == 4


def test_planned_takes_default_to_a_90_percent_confidence():
    assert planned_takes(2, 0.3) == planned_takes(2, 0.3, 0.9) == 12


def test_a_scene_estimate_shows_expected_and_planned_credits():
    estimate = scene_estimate(credits_per_take=50, variants=2, success_rate=0.3)
    assert estimate == SceneEstimate(
        expected_takes=pytest.approx(20 / 3), planned_takes=12, expected_credits=334, planned_credits=600
    )


def test_a_producers_planned_takes_override_wins():
    estimate = scene_estimate(credits_per_take=50, variants=2, success_rate=0.3, planned_takes_override=5)
    assert (estimate.planned_takes, estimate.planned_credits) == (5, 250)
    with pytest.raises(PlanningInputError, match="planned takes must be at least 1"):
        scene_estimate(credits_per_take=50, variants=2, success_rate=0.3, planned_takes_override=0)


def test_project_totals_add_a_contingency_rounded_up_on_the_planned_credits():
    scenes = [
        scene_estimate(credits_per_take=50, variants=2, success_rate=0.3),
        scene_estimate(credits_per_take=25, variants=1, success_rate=0.5),
    ]
    totals = project_totals(scenes, contingency_percent=15)
    assert totals.expected_credits == 334 + 50
    assert totals.planned_credits == 600 + 25 * planned_takes(1, 0.5)
    assert totals.contingency_credits == -(-totals.planned_credits * 15 // 100)
    assert totals.total_credits == totals.planned_credits + totals.contingency_credits


def test_an_empty_project_costs_nothing():
    assert project_totals([], contingency_percent=10).total_credits == 0


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ((0, 0.5, 0.9), "variants", "a scene needs at least 1 variant"),
        (
            (1, 0, 0.9),
            "success_rate",
            "the success rate must be above 0 and at most 1 (0.3 means 30%), not 0",
        ),
        (
            (1, 1.5, 0.9),
            "success_rate",
            "the success rate must be above 0 and at most 1 (0.3 means 30%), not 1.5",
        ),
        (
            (1, 0.5, 1),
            "confidence",
            "the confidence level must be above 0 and below 1 (0.9 means 90%), not 1",
        ),
        (
            (1, 0.5, 0),
            "confidence",
            "the confidence level must be above 0 and below 1 (0.9 means 90%), not 0",
        ),
        (
            (5, 0.0001, 0.9),
            "success_rate",
            "this scene would need more than 10,000 takes; check the success rate",
        ),
    ],
)
def test_it_refuses_planning_inputs_out_of_range(arguments, field, message):
    with pytest.raises(PlanningInputError) as raised:
        planned_takes(*arguments)
    assert (raised.value.field, raised.value.message) == (field, message)


def test_it_refuses_a_negative_contingency():
    with pytest.raises(PlanningInputError, match="the contingency must be 0% or more"):
        project_totals([], contingency_percent=-5)


# Properties over every seed model.


@st.composite
def seed_takes(draw, *, slugs=tuple(SEED)):
    """An allowed take of a seed model: (spec, rule, choices without the length, allowed lengths)."""
    spec, rule = seed_model(draw(st.sampled_from(slugs)))
    quality = draw(st.sampled_from(spec.qualities))
    choices = {"quality": quality}
    if spec.supports_audio:
        choices["audio"] = draw(st.booleans())
    for option in spec.options:
        choices[option] = draw(st.booleans())
    longest = min(spec.quality_max_seconds.get(quality, 10_000), spec.max_seconds or 10_000)
    lengths = [n for n in spec.lengths if n <= longest] or list(range(spec.min_seconds, longest + 1))
    return spec, rule, choices, lengths


@given(seed_takes(), st.data())
def test_every_allowed_take_costs_whole_credits_at_least_the_minimum(take, data):
    spec, rule, choices, lengths = take
    seconds = data.draw(st.sampled_from(lengths))
    result = take_cost(spec, rule, a_take(spec, seconds, **choices))
    assert isinstance(result.credits, int)
    assert result.credits >= max(rule.minimum, 1)
    assert result.billed_seconds >= seconds


@given(seed_takes(), st.data())
def test_a_longer_take_never_costs_less(take, data):
    spec, rule, choices, lengths = take
    shorter, longer = sorted(data.draw(st.lists(st.sampled_from(lengths), min_size=2, max_size=2)))

    def credits(seconds):
        return take_cost(spec, rule, a_take(spec, seconds, **choices)).credits

    assert credits(shorter) <= credits(longer)


TIER_SLUGS = tuple(slug for slug, entry in SEED.items() if "tiers" in entry["price_rule"])


@given(seed_takes(slugs=TIER_SLUGS), st.data())
def test_a_tier_model_bills_the_smallest_tier_that_holds_the_length(take, data):
    spec, rule, choices, lengths = take
    seconds = data.draw(st.sampled_from(lengths))
    tier = min(t for t in rule.tiers[choices["quality"]] if t >= seconds)
    result = take_cost(spec, rule, a_take(spec, seconds, **choices))
    assert result.billed_seconds == tier
    assert result.credits == take_cost(spec, rule, a_take(spec, tier, **choices)).credits


@given(st.integers(1, 100), st.integers(1, 30))
def test_the_minimum_is_a_floor_under_any_take(minimum, seconds):
    spec = ModelSpec(slug="m", name="M", qualities=("720p",), max_seconds=30, success_rate=0.5)
    rule = PriceRule(per_second={"720p": 1}, minimum=minimum)
    assert take_cost(spec, rule, TakeParams(seconds=seconds)).credits == max(minimum, seconds)


# Planning properties. Success rates and confidences are whole percents, as a producer types them.

variants = st.integers(1, 10)
success_rates = st.integers(5, 100).map(lambda percent: percent / 100)
confidences = st.integers(1, 99).map(lambda percent: percent / 100)


def chance_of_at_least(keepers, takes, success_rate):
    """P(at least `keepers` successes in `takes` takes), summed directly over the binomial upper tail."""
    p = Fraction(str(success_rate))
    a, b = p.numerator, p.denominator
    tail = sum(comb(takes, j) * a**j * (b - a) ** (takes - j) for j in range(keepers, takes + 1))
    return Fraction(tail, b**takes)


@given(variants, success_rates, confidences)
def test_planned_takes_are_the_fewest_that_reach_the_confidence(wanted, success_rate, confidence):
    takes = planned_takes(wanted, success_rate, confidence)
    assert takes >= wanted
    assert chance_of_at_least(wanted, takes, success_rate) >= Fraction(str(confidence))
    assert chance_of_at_least(wanted, takes - 1, success_rate) < Fraction(str(confidence))


@given(variants, success_rates, confidences, confidences)
def test_planned_takes_never_fall_as_variants_or_confidence_grow(wanted, success_rate, low, high):
    low, high = sorted([low, high])
    assert planned_takes(wanted, success_rate, low) <= planned_takes(wanted, success_rate, high)
    assert planned_takes(wanted, success_rate, low) <= planned_takes(wanted + 1, success_rate, low)


@given(st.integers(0, 1000), variants, success_rates, confidences)
def test_scene_credits_are_whole_and_grow_with_variants(credits_per_take, wanted, success_rate, confidence):
    def estimate(keepers):
        return scene_estimate(
            credits_per_take=credits_per_take,
            variants=keepers,
            success_rate=success_rate,
            confidence=confidence,
        )

    fewer, more = estimate(wanted), estimate(wanted + 1)
    assert isinstance(fewer.expected_credits, int)
    assert isinstance(fewer.planned_credits, int)
    assert fewer.expected_credits >= credits_per_take * wanted
    assert fewer.planned_credits >= credits_per_take * wanted
    assert fewer.expected_credits <= more.expected_credits
    assert fewer.planned_credits <= more.planned_credits
