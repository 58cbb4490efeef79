import pytest
from django.urls import reverse

from keter.accounts.roles import Role
from planner.selectors import project_totals
from planner.services.whatif import WhatIfError, whatif_apply, whatif_preview


def test_whatif_prices_the_selected_scenes_before_and_after_without_saving(project, make_scene, ctx):
    a = make_scene(model="sora-2", seconds=8, planned_takes_override=2)
    b = make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    before = project_totals(project)
    result = whatif_preview(project=project, ctx=ctx, scene_ids=[a.id], model="sora-2-pro", quality="1024p")
    [row] = result.rows
    assert (row.before.planned_credits, row.after.planned_credits, row.delta) == (160, 800, 640)
    assert result.before == before
    assert result.after.planned_credits == 800 + b.planned_credits
    assert result.after.total_credits == result.after.planned_credits + result.after.contingency_credits
    a.refresh_from_db()
    assert a.video_model.slug == "sora-2" and project_totals(project) == before


def test_whatif_says_which_scenes_would_become_invalid(project, make_scene, ctx):
    make_scene(model="sora-2", seconds=8)
    result = whatif_preview(project=project, ctx=ctx, scene_ids=None, model="runway-gen4-turbo")
    [row] = result.rows
    assert not row.after.is_valid and "not 8 s" in row.after.estimate_error
    assert result.invalid_after == 1 and row.delta is None


def test_whatif_apply_changes_every_selected_scene(project, make_scene, ctx):
    make_scene(model="sora-2", seconds=8), make_scene(model="sora-2", seconds=4)
    whatif_apply(project=project, ctx=ctx, scene_ids=None, seconds=12)
    assert sorted(project.scenes.values_list("seconds", flat=True)) == [12, 12]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scene_ids": [], "model": "sora-2"}, "Tick at least one scene"),
        ({"scene_ids": None}, "Choose another"),
    ],
)
def test_whatif_needs_scenes_and_a_change(project, make_scene, ctx, kwargs, message):
    make_scene()
    with pytest.raises(WhatIfError, match=message):
        whatif_preview(project=project, ctx=ctx, **kwargs)


def test_the_whatif_endpoint_shows_the_comparison_and_applies_it(client_as, project, make_scene):
    a = make_scene(model="sora-2", seconds=8, planned_takes_override=1)
    client = client_as(Role.PRODUCER)
    base = [project.team.slug, project.id]
    preview = client.post(reverse("planner:whatif", args=base), {"whatif_scene": [a.id], "seconds": "12"})
    assert preview.status_code == 200
    assert 'data-whatif="after">132<' in preview.content.decode()  # 120 + 10% contingency
    refused = client.post(reverse("planner:whatif", args=base), {"whatif_scene": [a.id], "seconds": "zz"})
    assert refused.status_code == 422 and "whole seconds" in refused.content.decode()
    applied = client.post(
        reverse("planner:whatif-apply", args=base), {"whatif_scene": [a.id], "seconds": "12"}
    )
    assert applied.status_code == 302
    a.refresh_from_db()
    assert a.seconds == 12
