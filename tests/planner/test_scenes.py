import datetime as dt

import pytest

from planner.models import PriceVersion, Scene, VideoModel
from planner.pricing import pricing_context
from planner.selectors import project_totals
from planner.services.scenes import (
    ReorderError,
    project_reprice,
    scene_add,
    scene_delete,
    scene_duplicate,
    scene_move,
    scene_restore,
    scene_update,
    scenes_reorder,
)


def test_a_scene_is_priced_by_the_engine_when_saved(make_scene):
    scene = make_scene(model="runway-gen4-turbo", seconds=10, image_refs=1, variants=2)
    # 50 credits a take; 2 keepers at 35%: 5.71 expected takes, and the P90 quantile.
    assert (scene.credits_per_take, scene.billed_seconds) == (50, 10)
    assert scene.expected_credits == 286
    assert scene.planned_credits == 50 * scene.planned_takes
    assert scene.planned_takes >= 6 and scene.is_valid


def test_a_new_scene_copies_the_settings_of_the_last_one(project, ctx, make_scene):
    make_scene(model="luma-ray2", quality="1080p", seconds=7, variants=3, hdr=0)
    added = scene_add(project=project, ctx=ctx).scene
    assert (added.video_model.slug, added.quality, added.seconds, added.variants) == (
        "luma-ray2",
        "1080p",
        7,
        3,
    )
    assert added.position == 1 and added.title == "Scene 2"


def test_a_length_the_model_does_not_make_is_saved_but_marks_the_scene_invalid(make_scene, project):
    good = make_scene(model="sora-2", seconds=8)
    bad = make_scene(model="runway-gen4-turbo", seconds=10, image_refs=1)
    change = scene_update(scene=bad, data={"seconds": "7"}, ctx=pricing_context(project.team))
    assert change.errors == {"seconds": "Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s"}
    bad.refresh_from_db()
    assert bad.seconds == 7 and not bad.is_valid
    totals = project_totals(project)
    assert totals.invalid_scenes == 1
    assert totals.planned_credits == good.planned_credits  # the invalid scene is left out, and said so


def test_text_that_cannot_be_stored_is_kept_with_its_message_and_the_old_value_stays(make_scene, ctx):
    scene = make_scene(model="sora-2", seconds=8)
    change = scene_update(scene=scene, data={"seconds": "eight", "title": "Hero"}, ctx=ctx)
    assert change.errors == {"seconds": "Enter the length in whole seconds"}
    scene.refresh_from_db()
    assert scene.title == "Hero" and scene.seconds == 8
    assert scene.invalid_input == {
        "seconds": {"value": "eight", "message": "Enter the length in whole seconds"}
    }
    assert not scene.is_valid
    # Fixing the field clears the refusal.
    scene_update(scene=scene, data={"seconds": "12"}, ctx=ctx)
    scene.refresh_from_db()
    assert scene.invalid_input == {} and scene.is_valid and scene.seconds == 12


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"seconds": "0"}, "seconds", "at least 1 second"),
        ({"seconds": "-5"}, "seconds", "at least 1 second"),
        ({"seconds": "100000"}, "seconds", "No model makes clips over 600 s"),
        ({"variants": "0"}, "variants", "at least 1 variant"),
        ({"model": "dalle-video"}, "model", "no model called 'dalle-video'"),
        ({"quality": "1080p"}, "quality", "1080p is not offered by Runway Gen-4 Turbo"),
        ({"image_refs": "0"}, "references", "this model needs an image reference"),
        ({"planned_takes_override": "0"}, "planned_takes_override", "Plan at least 1 take"),
        ({"title": "t" * 121}, "title", "at most 120 characters"),
    ],
)
def test_each_kind_of_bad_input_gets_its_message_on_its_field(make_scene, ctx, data, field, message):
    scene = make_scene(model="runway-gen4-turbo", seconds=5, image_refs=1)
    change = scene_update(scene=scene, data=data, ctx=ctx)
    assert message in change.errors[field]
    scene.refresh_from_db()
    assert not scene.is_valid


def test_a_quality_the_plan_does_not_allow_is_refused_in_the_plans_words(make_scene, project, plans):
    project.team.plan = plans["free"]
    project.team.save()
    scene = make_scene(model="sora-2", seconds=4)
    change = scene_update(
        scene=scene,
        data={"model": "veo-3-1", "quality": "1080p", "seconds": "8"},
        ctx=pricing_context(project.team),
    )
    assert change.errors == {"quality": "your plan allows up to 720p"}


def test_switching_model_resets_what_the_new_model_does_not_offer(make_scene, ctx):
    scene = make_scene(model="pixverse-v5", quality="1080p", seconds=5, fast_motion=1, sound_effects=1)
    assert scene.credits_per_take == 120 * 2 + 10
    change = scene_update(scene=scene, data={"model": "runway-gen4-turbo"}, ctx=ctx)
    scene.refresh_from_db()
    assert change.model_changed
    assert (scene.quality, scene.fast_motion, scene.sound_effects) == ("720p", False, False)


def test_a_manual_planned_takes_override_wins(make_scene, ctx):
    scene = make_scene(model="sora-2", seconds=4, variants=1)
    scene_update(scene=scene, data={"planned_takes_override": "2"}, ctx=ctx)
    scene.refresh_from_db()
    assert (scene.planned_takes, scene.planned_credits) == (2, 80)
    scene_update(scene=scene, data={"planned_takes_override": ""}, ctx=ctx)
    scene.refresh_from_db()
    assert scene.planned_takes_override is None and scene.planned_takes > 2


def test_totals_add_the_contingency_on_the_planned_credits(make_scene, project):
    a = make_scene(model="sora-2", seconds=4, planned_takes_override=3)
    b = make_scene(model="sora-2", seconds=8, planned_takes_override=1)
    totals = project_totals(project)
    assert totals.planned_credits == a.planned_credits + b.planned_credits == 120 + 80
    assert totals.contingency_credits == 20 and totals.total_credits == 220
    assert totals.expected_credits == a.expected_credits + b.expected_credits


def test_duplicate_inserts_a_copy_right_after_the_original(make_scene, project):
    first, second = make_scene(title="A"), make_scene(title="B")
    copy = scene_duplicate(scene=first)
    order = list(project.scenes.order_by("position").values_list("title", flat=True))
    assert order == ["A", "A (copy)", "B"]
    assert copy.planned_credits == first.planned_credits
    assert project_totals(project).planned_credits == 2 * first.planned_credits + second.planned_credits


def test_delete_leaves_the_totals_until_undone(make_scene, project):
    keep, gone = make_scene(title="keep"), make_scene(title="gone", model="sora-2", seconds=12)
    before = project_totals(project)
    scene_delete(scene=gone)
    assert project_totals(project).planned_credits == keep.planned_credits
    assert project_totals(project).scenes == 1
    scene_restore(scene=gone)
    assert project_totals(project) == before


def test_moving_up_and_down_persists_the_order(make_scene, project):
    a, _, c = make_scene(title="a"), make_scene(title="b"), make_scene(title="c")
    scene_move(scene=Scene.objects.get(id=c.id), direction="up")
    scene_move(scene=Scene.objects.get(id=a.id), direction="up")  # already first: nothing happens
    assert list(project.scenes.order_by("position").values_list("title", flat=True)) == ["a", "c", "b"]


def test_reorder_takes_the_full_list_and_refuses_a_stale_one(make_scene, project):
    a, b, c = make_scene(title="a"), make_scene(title="b"), make_scene(title="c")
    scenes_reorder(project=project, scene_ids=[c.id, a.id, b.id])
    assert list(project.scenes.order_by("position").values_list("title", flat=True)) == ["c", "a", "b"]
    with pytest.raises(ReorderError, match="reload the page"):
        scenes_reorder(project=project, scene_ids=[a.id, b.id])


def test_reprice_follows_a_new_price_and_keeps_the_old_date_reproducible(make_scene, project):
    scene = make_scene(model="runway-gen4-turbo", seconds=10, image_refs=1, planned_takes_override=1)
    assert scene.planned_credits == 50
    turbo = VideoModel.objects.get(slug="runway-gen4-turbo")
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    PriceVersion.objects.create(video_model=turbo, effective_from=tomorrow, rule={"per_second": {"720p": 6}})
    project_reprice(project=project, ctx=pricing_context(project.team))
    assert Scene.objects.get(id=scene.id).planned_credits == 50  # today's price
    project_reprice(project=project, ctx=pricing_context(project.team, day=tomorrow))
    assert Scene.objects.get(id=scene.id).planned_credits == 60


def test_a_retired_model_makes_its_scenes_invalid_with_a_reason(make_scene, project):
    scene = make_scene(model="sora-2", seconds=4)
    VideoModel.objects.filter(slug="sora-2").update(is_active=False)
    project_reprice(project=project, ctx=pricing_context(project.team))
    scene.refresh_from_db()
    assert scene.estimate_error == "OpenAI Sora 2 is retired: choose another model"


def test_a_low_success_rate_scene_warns_with_its_credits_per_usable_take(make_scene):
    scene = make_scene(model="runway-gen3-alpha-turbo", seconds=5, variants=2)
    assert scene.planned_takes >= 3 * scene.variants
    assert scene.has_low_success_warning
    assert scene.credits_per_usable_take == round(25 / float(scene.success_rate))
