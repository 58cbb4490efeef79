import pytest
from django.urls import reverse

from keter.accounts.roles import Role
from planner.models import Project, Scene
from planner.services.projects import project_create

EDITORS = [Role.OWNER, Role.PRODUCER]
READERS = [Role.LEAD, Role.FINANCE, Role.VIEWER]
HTMX = {"HX-Request": "true"}


def url(name, project, *args):
    return reverse(name, args=[project.team.slug, project.id, *args])


@pytest.mark.parametrize("role", EDITORS + READERS)
def test_every_role_sees_the_project_and_only_editors_get_controls(client_as, project, make_scene, role):
    make_scene(title="Opening shot")
    response = client_as(role).get(url("planner:project", project))
    page = response.content.decode()
    assert response.status_code == 200 and "Opening shot" in page
    assert ('name="seconds"' in page) == (role in EDITORS)
    assert ("+ Add scene" in page) == (role in EDITORS)
    assert ('id="whatif-form"' in page) == (role in EDITORS)


@pytest.mark.parametrize("role", READERS)
def test_read_only_roles_get_403_on_every_write(client_as, project, make_scene, role):
    scene = make_scene(title="Keep me", seconds=5)
    client = client_as(role)
    writes = [
        (url("planner:scene-update", project, scene.id), {"seconds": "10"}),
        (url("planner:scene-add", project), {}),
        (url("planner:scene-duplicate", project, scene.id), {}),
        (url("planner:scene-delete", project, scene.id), {}),
        (url("planner:scene-move", project, scene.id), {"direction": "up"}),
        (url("planner:scenes-reorder", project), {"scene": [scene.id]}),
        (url("planner:whatif", project), {"all": "1", "model": "sora-2"}),
        (url("planner:whatif-apply", project), {"all": "1", "model": "sora-2"}),
        (url("planner:scenes-import", project), {}),
        (url("planner:project-edit", project), {"name": "x"}),
    ]
    assert [client.post(u, d).status_code for u, d in writes] == [403] * len(writes)
    assert (
        client.post(reverse("planner:project-new", args=[project.team.slug]), {"name": "x"}).status_code
        == 403
    )
    scene.refresh_from_db()
    assert (scene.seconds, scene.title, scene.deleted_at) == (5, "Keep me", None)
    assert Scene.objects.count() == 1 and Project.objects.count() == 1


def test_another_teams_projects_and_scenes_are_404(client_as, other_team, catalog):
    from keter.accounts.models import Membership
    from planner.pricing import pricing_context
    from planner.services.scenes import scene_add

    foreign_owner = Membership.objects.get(team=other_team, role=Role.OWNER)
    foreign = project_create(by=foreign_owner, name="Harbor secret")
    scene = scene_add(project=foreign, ctx=pricing_context(other_team)).scene
    client = client_as(Role.OWNER)
    northwind = "northwind"
    assert client.get(reverse("planner:project", args=[northwind, foreign.id])).status_code == 404
    assert client.get(reverse("planner:project", args=[other_team.slug, foreign.id])).status_code == 404
    assert (
        client.post(
            reverse("planner:scene-update", args=[northwind, foreign.id, scene.id]), {"seconds": "9"}
        ).status_code
        == 404
    )
    assert client.get(reverse("planner:scenes-export", args=[northwind, foreign.id])).status_code == 404
    scene.refresh_from_db()
    assert scene.seconds != 9


def test_a_scene_edit_answers_with_out_of_band_cost_messages_and_totals(client_as, project, make_scene):
    scene = make_scene(model="sora-2", seconds=4, planned_takes_override=2)
    response = client_as(Role.PRODUCER).post(
        url("planner:scene-update", project, scene.id), {"seconds": "8"}, headers=HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert f'id="scene-{scene.id}-cost" hx-swap-oob="true"' in page
    assert 'id="project-totals"' in page and 'hx-swap-oob="true"' in page
    # The field being typed in is not sent back: it must keep its focus and caret.
    assert f'id="scene-{scene.id}-seconds"' not in page
    assert '<strong title="Planned (P90) credits">160</strong>' in page  # 2 takes x 80
    assert 'data-total="planned">160<' in page


def test_an_invalid_edit_answers_422_with_the_message_next_to_the_field(client_as, project, make_scene):
    scene = make_scene(model="runway-gen4-turbo", seconds=5, image_refs=1)
    response = client_as(Role.PRODUCER).post(
        url("planner:scene-update", project, scene.id), {"seconds": "7"}, headers=HTMX
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert f'id="scene-{scene.id}-err-seconds"' in page
    assert "Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s" in page
    assert "1 scene needs fixing" in page


def test_a_model_change_also_sends_the_new_quality_choices(client_as, project, make_scene):
    scene = make_scene(model="runway-gen4-turbo", seconds=5, image_refs=1)
    response = client_as(Role.PRODUCER).post(
        url("planner:scene-update", project, scene.id), {"model": "veo-3-1"}, headers=HTMX
    )
    page = response.content.decode()
    assert f'id="scene-{scene.id}-quality" hx-swap-oob="true"' in page
    assert '<option value="4K"' in page


def test_a_reload_shows_what_was_typed_even_when_it_could_not_be_saved(client_as, project, make_scene):
    scene = make_scene(model="sora-2", seconds=4)
    client = client_as(Role.PRODUCER)
    client.post(url("planner:scene-update", project, scene.id), {"seconds": "four"}, headers=HTMX)
    page = client.get(url("planner:project", project)).content.decode()
    assert 'value="four"' in page and "Enter the length in whole seconds" in page


def test_the_scene_edit_runs_a_constant_number_of_queries_on_a_300_scene_project(
    client_as, project, ctx, django_assert_max_num_queries
):
    from planner.services.scenes import scene_add

    first = scene_add(project=project, ctx=ctx).scene
    Scene.objects.bulk_create(
        [
            Scene(project=project, position=i, video_model=first.video_model, seconds=5, image_refs=1)
            for i in range(1, 300)
        ]
    )
    client = client_as(Role.PRODUCER)
    client.get(url("planner:project", project))  # prices every scene once
    # Session, user, membership, the scene with its project, prices and judged takes, update, totals.
    with django_assert_max_num_queries(6):
        response = client.post(
            url("planner:scene-update", project, first.id), {"seconds": "10"}, headers=HTMX
        )
    assert response.status_code == 200


def test_a_non_htmx_scene_post_redirects_back_to_the_project(client_as, project, make_scene):
    scene = make_scene(model="sora-2", seconds=4)
    response = client_as(Role.PRODUCER).post(url("planner:scene-update", project, scene.id), {"seconds": "8"})
    assert response.status_code == 302 and response.url == url("planner:project", project)


def test_move_needs_a_direction(client_as, project, make_scene):
    scene = make_scene()
    assert (
        client_as(Role.PRODUCER)
        .post(url("planner:scene-move", project, scene.id), {"direction": "sideways"})
        .status_code
        == 400
    )


def test_reorder_answers_204_and_409_when_the_list_changed(client_as, project, make_scene):
    a, b = make_scene(title="a"), make_scene(title="b")
    client = client_as(Role.PRODUCER)
    assert client.post(url("planner:scenes-reorder", project), {"scene": [b.id, a.id]}).status_code == 204
    assert client.post(url("planner:scenes-reorder", project), {"scene": [b.id]}).status_code == 409
    assert client.post(url("planner:scenes-reorder", project), {"scene": ["x"]}).status_code == 400


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "n" * 121}, "name", "at most 120 characters"),
        ({"name": "ok", "contingency_percent": "-5"}, "contingency_percent", "greater than or equal to 0"),
        ({"name": "ok", "contingency_percent": "abc"}, "contingency_percent", "Enter a number."),
        ({"name": "ok", "due_date": "31/31/2026"}, "due_date", "Enter a valid date."),
        ({"name": "ok", "links": "https://ok.example\nnot a link"}, "links", "Line 2 is not a link"),
    ],
)
def test_the_project_form_explains_bad_input_and_keeps_it(client_as, demo, data, field, message):
    response = client_as(Role.PRODUCER).post(
        reverse("planner:project-new", args=[demo.slug]), {"contingency_percent": "10", **data}
    )
    assert response.status_code == 422
    assert any(message in e for e in response.context["form"].errors[field])
    assert Project.objects.count() == 0
    for value in data.values():
        if value:
            assert value.split("\n")[0] in response.content.decode()


def test_a_producer_creates_a_project_and_lands_in_its_editor(client_as, demo, member):
    response = client_as(Role.PRODUCER).post(
        reverse("planner:project-new", args=[demo.slug]),
        {"name": "Launch film", "contingency_percent": "15", "usage": "YouTube"},
    )
    project = Project.objects.get()
    assert response.url == reverse("planner:project", args=[demo.slug, project.id])
    assert project.responsible == member(Role.PRODUCER).user and project.team == demo


def test_the_project_list_shows_totals_and_filters_by_status(client_as, project, make_scene, member):
    make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    project_create(by=member(Role.OWNER), name="Old one", status=Project.Status.DELIVERED)
    client = client_as(Role.VIEWER)
    page = client.get(reverse("planner:projects", args=["northwind"])).content.decode()
    assert "Spring campaign" in page and "Old one" in page and ">44<" in page  # 40 + 10% contingency
    active = client.get(
        reverse("planner:projects", args=["northwind"]), {"status": "active"}
    ).content.decode()
    assert "Spring campaign" in active and "Old one" not in active


def test_the_dashboard_lists_active_projects_with_their_planned_credits(client_as, project, make_scene):
    make_scene(model="sora-2", seconds=4, planned_takes_override=2)
    page = client_as(Role.LEAD).get(reverse("planner:dashboard", args=["northwind"])).content.decode()
    assert "Spring campaign" in page and ">80<" in page and ">88<" in page
