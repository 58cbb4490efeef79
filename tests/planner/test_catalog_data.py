"""The seed catalog matches shared/reference/video-pricing.md and loads into the cost engine."""

import datetime
import json

import pytest

from planner.catalog_data import MODELS
from planner.costing import OPTION_LABELS, ModelSpec, PriceRule

REFERENCE_SLUGS = {
    "runway-gen4-turbo",
    "runway-gen4",
    "runway-gen45",
    "runway-gen3-alpha",
    "runway-gen3-alpha-turbo",
    "runway-aleph",
    "runway-act-one",
    "runway-act-one-turbo",
    "veo-3-1",
    "veo-3-1-fast",
    "kling-2-6",
    "wan-2-6",
    "sora-2",
    "sora-2-pro",
    "luma-ray2",
    "luma-ray2-flash",
    "luma-ray3",
    "pixverse-v5",
    "pixverse-v4-5",
    "kling-2-5-turbo-pro",
    "hailuo-02",
}
SEED = {entry["slug"]: entry for entry in MODELS}


def test_the_catalog_has_exactly_the_reference_slugs_once_each():
    assert len(MODELS) == len(SEED)
    assert set(SEED) == REFERENCE_SLUGS


def test_the_catalog_is_plain_json():
    assert json.loads(json.dumps(MODELS)) == MODELS


@pytest.mark.parametrize("entry", MODELS, ids=lambda entry: entry["slug"])
def test_every_entry_round_trips_through_the_engine_types(entry):
    spec = ModelSpec.from_dict(entry)
    assert {key: entry[key] for key in spec.to_dict()} == spec.to_dict()
    assert PriceRule.from_dict(entry["price_rule"]).to_dict() == entry["price_rule"]


@pytest.mark.parametrize("entry", MODELS, ids=lambda entry: entry["slug"])
def test_every_entry_carries_the_catalog_columns(entry):
    assert entry["name"] and entry["vendor"]
    assert datetime.date.fromisoformat(entry["price_effective"]) == datetime.date(2026, 10, 1)
    assert 0.25 <= entry["success_rate"] <= 0.6
    assert entry["success_rate_is_estimate"] is True
    assert entry["refund_on_failure"] is True
    assert isinstance(entry["refund_on_moderation"], bool)
    assert 3 <= entry["render_seconds_per_output_second"] <= 12


@pytest.mark.parametrize("entry", MODELS, ids=lambda entry: entry["slug"])
def test_every_model_prices_exactly_the_qualities_and_options_it_offers(entry):
    spec, rule = ModelSpec.from_dict(entry), PriceRule.from_dict(entry["price_rule"])
    assert set(rule.per_second or rule.tiers) == set(spec.qualities)
    assert set(rule.multipliers) | set(rule.add_ons) == set(spec.options) | (
        {"audio"} & set(rule.multipliers)
    )
    assert "audio" not in rule.multipliers or spec.supports_audio


@pytest.mark.parametrize("entry", [e for e in MODELS if "tiers" in e["price_rule"]], ids=lambda e: e["slug"])
def test_a_tier_model_accepts_any_length_up_to_its_largest_tier_for_each_quality(entry):
    spec, rule = ModelSpec.from_dict(entry), PriceRule.from_dict(entry["price_rule"])
    assert (spec.min_seconds, spec.lengths) == (1, ())
    for quality, tiers in rule.tiers.items():
        assert min(spec.quality_max_seconds.get(quality, spec.max_seconds), spec.max_seconds) == max(tiers)


def test_the_reference_requirements_and_defaults_are_seeded():
    assert SEED["runway-gen4-turbo"]["required_reference"] == "image"
    assert SEED["runway-gen4"]["required_reference"] == "image"
    assert (SEED["runway-aleph"]["required_reference"], SEED["runway-aleph"]["max_seconds"]) == ("video", 5)
    assert SEED["runway-act-one"]["price_rule"]["minimum"] == 50
    assert SEED["runway-act-one-turbo"]["price_rule"]["minimum"] == 25
    assert SEED["veo-3-1"]["audio_by_default"] is True
    assert SEED["hailuo-02"]["quality_max_seconds"] == {"1080p": 6}


def test_settlement_flags_follow_the_failed_generations_table():
    flags = {slug: (e["refund_on_failure"], e["refund_on_moderation"]) for slug, e in SEED.items()}
    assert flags["runway-gen4"] == (True, True)  # web app: moderation refuses before generating
    assert flags["kling-2-6"] == flags["kling-2-5-turbo-pro"] == (True, True)
    assert flags["pixverse-v5"][0] is True
    assert flags["veo-3-1"][0] is True


def test_options_named_anywhere_are_engine_options():
    assert all(set(entry["options"]) <= set(OPTION_LABELS) for entry in MODELS)
