import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from planner import costing
from planner.catalog import Catalog, UnknownModel, load_catalog, plan_check
from planner.catalog_data import MODELS
from planner.models import PriceVersion, VideoModel


def test_it_loads_every_reference_model_once_however_often_it_runs(db):
    load_catalog()
    load_catalog()
    assert VideoModel.objects.count() == len(MODELS) == 21
    assert PriceVersion.objects.count() == 21
    assert set(VideoModel.objects.values_list("slug", flat=True)) == {m["slug"] for m in MODELS}


def test_an_estimate_uses_the_price_in_effect_on_its_date(catalog):
    turbo = VideoModel.objects.get(slug="runway-gen4-turbo")
    PriceVersion.objects.create(
        video_model=turbo, effective_from=dt.date(2027, 1, 1), rule={"per_second": {"720p": 7}}
    )
    params = costing.TakeParams(seconds=10, image_refs=1)
    assert Catalog.load(dt.date(2026, 12, 31)).get("runway-gen4-turbo").take_cost(params).credits == 50
    assert Catalog.load(dt.date(2027, 1, 1)).get("runway-gen4-turbo").take_cost(params).credits == 70
    # Before the first price took effect the model cannot be priced at all.
    with pytest.raises(UnknownModel):
        Catalog.load(dt.date(2026, 1, 1)).get("runway-gen4-turbo")


def test_reloading_the_seed_keeps_prices_edited_later(catalog):
    turbo = VideoModel.objects.get(slug="runway-gen4-turbo")
    PriceVersion.objects.create(
        video_model=turbo, effective_from=dt.date(2027, 1, 1), rule={"per_second": {"720p": 7}}
    )
    load_catalog()
    assert turbo.prices.count() == 2


def test_the_admin_refuses_a_malformed_price_rule_or_spec(catalog):
    turbo = VideoModel.objects.get(slug="runway-gen4-turbo")
    with pytest.raises(ValidationError):
        PriceVersion(video_model=turbo, effective_from=dt.date(2027, 1, 1), rule={"per_sec": 5}).full_clean()
    turbo.qualities = ["8K"]
    with pytest.raises(ValidationError):
        turbo.full_clean()


def test_an_unknown_model_is_named_in_the_message(catalog):
    with pytest.raises(UnknownModel, match="no model called 'sora-9'"):
        catalog.get("sora-9")


def test_the_plan_check_speaks_the_producers_language(catalog, plans):
    veo = catalog.get("veo-3-1")
    with pytest.raises(costing.PlanLimitError, match="your plan allows up to 720p") as refused:
        plan_check(plan=plans["free"], entry=veo, params=costing.TakeParams(seconds=8, quality="1080p"))
    assert refused.value.field == "quality"
    with pytest.raises(costing.PlanLimitError, match="clips up to 10 s"):
        plan_check(
            plan=plans["free"], entry=catalog.get("runway-act-one"), params=costing.TakeParams(seconds=20)
        )
    plan_check(plan=plans["pro"], entry=veo, params=costing.TakeParams(seconds=8, quality="4K"))
