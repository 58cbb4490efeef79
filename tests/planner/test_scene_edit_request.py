"""The scene-edit request (planner:scene-update) as htmx sends it: what it saves and answers, and its cost."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from keter.accounts.roles import Role
from planner.models import PriceVersion, Project, Scene, VideoModel
from planner.pricing import pricing_context
from planner.queue_selectors import LEARNED_RATE_MIN_TAKES
from planner.selectors import project_totals
from planner.services.projects import project_create
from planner.services.queue import queue_dispatch, queue_launch_scene
from planner.services.scenes import scene_add, scene_delete, scene_update
from planner.services.takes import take_judge

HTMX = {"HTTP_HX_REQUEST": "true"}


def make_project(member, scenes: int) -> Project:
    producer = member(Role.PRODUCER)
    project = project_create(by=producer, name="Spring campaign")
    ctx = pricing_context(producer.team)
    for _ in range(scenes):
        scene_add(project=project, ctx=ctx, data={"model": "runway-gen4-turbo", "seconds": "5"})
    return project


def edit(client, scene: Scene, **data):
    url = reverse("planner:scene-update", args=["northwind", scene.project_id, scene.id])
    return client.post(url, data, **HTMX)


@pytest.fixture
def producer_client(client_as, catalog):
    return client_as(Role.PRODUCER)


def test_it_changes_the_model_to_one_posted_with_spaces_around_it(producer_client, member):
    scene = make_project(member, 1).scenes.get()
    response = edit(producer_client, scene, model=" kling-2-6 ")
    assert response.status_code == 200
    scene.refresh_from_db()
    assert (scene.video_model.slug, scene.quality, scene.is_valid) == ("kling-2-6", "1080p", True)
    assert b'id="scene-%d-quality" hx-swap-oob="true"' % scene.id in response.content


def test_it_refuses_an_unknown_model_with_the_catalogs_message(producer_client, member):
    scene = make_project(member, 1).scenes.get()
    response = edit(producer_client, scene, model="nope")
    assert response.status_code == 422
    assert b"there is no model called &#x27;nope&#x27; in the catalog" in response.content
    scene.refresh_from_db()
    assert scene.video_model.slug == "runway-gen4-turbo"
    assert scene.invalid_input["model"]["value"] == "nope"


def test_it_marks_a_scene_on_a_retired_model_invalid(producer_client, member):
    scene = make_project(member, 1).scenes.get()
    VideoModel.objects.filter(slug="runway-gen3-alpha").update(is_active=False)
    response = edit(producer_client, scene, model="runway-gen3-alpha")
    assert response.status_code == 422
    assert b"Runway Gen-3 Alpha is retired: choose another model" in response.content


def test_the_totals_leave_out_deleted_scenes_and_count_invalid_ones(member, demo, catalog):
    project = make_project(member, 4)
    first, second, third, _ = project.scenes.all()
    planned_each = first.planned_credits
    scene_update(scene=second, data={"seconds": "7"}, ctx=pricing_context(demo))  # the engine refuses
    scene_update(scene=third, data={"seconds": "abc"}, ctx=pricing_context(demo))  # does not even parse
    scene_delete(scene=first)
    totals = project_totals(project)
    assert (totals.scenes, totals.invalid_scenes, totals.planned_credits) == (3, 2, planned_each)


def test_the_totals_of_a_project_without_scenes_are_zero(member, catalog):
    totals = project_totals(make_project(member, 0))
    assert (totals.scenes, totals.invalid_scenes, totals.planned_credits, totals.total_credits) == (0,) * 4


# Session, user, membership; the scene with its project, its models, their prices and the team's judged
# takes; the update (of the changed columns, one statement: no transaction); the totals.
SCENE_EDIT_QUERIES = 6


def test_it_runs_as_many_queries_for_300_scenes_as_for_3(producer_client, member, django_assert_num_queries):
    small, large = make_project(member, 3).scenes.first(), make_project(member, 300).scenes.first()
    edit(producer_client, small, seconds="10")  # the session settles on the first request
    with django_assert_num_queries(SCENE_EDIT_QUERIES):
        edit(producer_client, small, seconds="5")
    with django_assert_num_queries(SCENE_EDIT_QUERIES):
        edit(producer_client, large, seconds="10")


def test_an_edit_of_one_field_keeps_what_another_producer_just_saved_in_another(member, demo, catalog):
    scene = make_project(member, 1).scenes.get()
    mine, theirs = Scene.objects.get(pk=scene.pk), Scene.objects.get(pk=scene.pk)
    scene_update(scene=theirs, data={"title": "Harbour at dawn"}, ctx=pricing_context(demo))
    scene_update(scene=mine, data={"seconds": "10"}, ctx=pricing_context(demo))
    scene.refresh_from_db()
    assert (scene.title, scene.seconds) == ("Harbour at dawn", 10)


@pytest.fixture
def judged(project, make_scene, approve, member, demo, finish):
    """judged(keepers, of=n) -> a 4 s Sora scene wanting 2 keepers, after n of its takes were judged."""

    def make(keepers: int, *, of: int):
        scene = make_scene(model="sora-2", seconds=4, variants=2, planned_takes_override=4)
        approve(project, credits=3000)
        for job in queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=of).jobs:
            queue_dispatch(team_id=demo.id)
            finish(job)
            verdict = "keeper" if job.take_number <= keepers else "rejected"
            take_judge(job=job, by=member(Role.PRODUCER), verdict=verdict)
        return scene

    return make


def test_an_edit_prices_the_scene_at_the_rate_the_team_learned_for_its_model(producer_client, judged):
    scene = judged(4, of=LEARNED_RATE_MIN_TAKES)
    response = edit(producer_client, scene, planned_takes_override="")
    assert "learned 40% from 10 takes" in response.content.decode()
    scene.refresh_from_db()
    assert (float(scene.success_rate), round(scene.expected_takes, 1)) == (0.4, 5.0)


def test_an_edit_keeps_the_catalog_rate_until_enough_takes_are_judged(producer_client, judged):
    scene = judged(4, of=LEARNED_RATE_MIN_TAKES - 1)
    response = edit(producer_client, scene, planned_takes_override="")
    assert "catalog est. 35%" in response.content.decode()
    scene.refresh_from_db()
    assert float(scene.success_rate) == 0.35


def test_a_model_change_prices_the_scene_at_the_new_models_rate(producer_client, judged):
    scene = judged(4, of=LEARNED_RATE_MIN_TAKES)
    response = edit(producer_client, scene, model="kling-2-6")
    assert "learned" not in response.content.decode()
    response = edit(producer_client, scene, model="sora-2", seconds="4")
    assert "learned 40% from 10 takes" in response.content.decode()


@pytest.mark.parametrize("ids", [(1, 2**63), (2**63, 1), (2**70, 2**70)])
def test_an_id_too_large_for_any_row_is_a_404(producer_client, member, ids):
    project_id, scene_id = ids
    url = reverse("planner:scene-update", args=["northwind", project_id, scene_id])
    assert producer_client.post(url, {"seconds": "5"}, **HTMX).status_code == 404


def test_a_scene_of_another_project_of_the_team_is_a_404(producer_client, member):
    scene, other = make_project(member, 1).scenes.get(), make_project(member, 1)
    url = reverse("planner:scene-update", args=["northwind", other.id, scene.id])
    assert producer_client.post(url, {"seconds": "10"}, **HTMX).status_code == 404
    scene.refresh_from_db()
    assert scene.seconds == 5


def test_an_edit_prices_the_scene_at_the_price_in_effect_today(producer_client, member):
    scene = make_project(member, 1).scenes.get()
    turbo, today = VideoModel.objects.get(slug="runway-gen4-turbo"), timezone.localdate()
    PriceVersion.objects.create(video_model=turbo, effective_from=today, rule={"per_second": {"720p": 7}})
    PriceVersion.objects.create(
        video_model=turbo, effective_from=today + dt.timedelta(days=1), rule={"per_second": {"720p": 9}}
    )
    edit(producer_client, scene, seconds="10")
    scene.refresh_from_db()
    assert scene.credits_per_take == 70
