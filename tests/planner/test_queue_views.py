"""The queue's pages and actions per role: launch, cancel and judge are for owners and producers; every
role reads; another team's ids are 404; bad input is a message, never a 500."""

import pytest
from django.urls import reverse
from kombu.exceptions import OperationalError

from keter import broker
from keter.accounts.models import Membership
from keter.accounts.roles import Role
from planner.models import Job
from planner.services.queue import queue_dispatch, queue_launch_scene

LAUNCHERS = [Role.OWNER, Role.PRODUCER]
OTHERS = [Role.LEAD, Role.FINANCE, Role.VIEWER]
HTMX = {"HX-Request": "true"}


def url(name, *args, team="northwind"):
    return reverse(name, args=[team, *args])


def launched(scene, member, takes=1):
    return queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=takes).jobs


def texts(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.parametrize("role", LAUNCHERS + OTHERS)
def test_every_role_sees_the_queue_and_only_launchers_get_cancel(
    client_as, approved, sora_scene, member, role
):
    launched(sora_scene, member, takes=1)
    page = client_as(role).get(url("planner:queue")).content.decode()
    assert "Scene 1</strong> · take 1" in page and "running 0 of 3" in page
    assert ('aria-label="Cancel take 1 of Scene 1"' in page) == (role in LAUNCHERS)


def test_the_queue_board_polls_itself_every_two_seconds(client_as, approved, sora_scene, member):
    jobs = launched(sora_scene, member, takes=3)
    queue_dispatch(team_id=approved.team_id)
    response = client_as(Role.VIEWER).get(url("planner:queue") + f"?project={approved.id}", headers=HTMX)
    page = response.content.decode()
    assert page.lstrip().startswith('<section id="queue-board"')
    assert 'hx-trigger="every 2s"' in page and f"?project={approved.id}" in page
    assert "running 3 of 3" in page and page.count('data-state="running"') == 3
    assert "<html" not in page
    assert jobs


def test_the_queue_shows_the_place_in_line_and_the_progress(
    client_as, approved, make_scene, member, settings
):
    settings.KETER_SIM_SPEED = 1
    scene = make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    jobs = launched(scene, member, takes=4)  # 4 × 40 = 160 of 264
    queue_dispatch(team_id=approved.team_id)
    from planner.services.renders import job_claim

    job_claim(job_id=jobs[0].id)
    page = client_as(Role.PRODUCER).get(url("planner:queue")).content.decode()
    assert '<progress class="progress"' in page and "s left" in page
    assert '<span title="Place in line">1</span>' in page  # the fourth take waits first in line


def test_the_queue_filters_by_project(client_as, approved, sora_scene, member):
    from planner.services.projects import project_create

    other = project_create(by=member(Role.PRODUCER), name="Other campaign")
    launched(sora_scene, member)
    client = client_as(Role.PRODUCER)
    assert "take 1" in client.get(url("planner:queue") + f"?project={approved.id}").content.decode()
    assert "take 1" not in client.get(url("planner:queue") + f"?project={other.id}").content.decode()
    assert "take 1" in client.get(url("planner:queue") + "?project=abc").content.decode()  # ignored


def test_the_queue_says_when_takes_wait_although_slots_are_free(client_as, approved, sora_scene, member):
    launched(sora_scene, member)  # never dispatched, as when the broker was down
    page = client_as(Role.PRODUCER).get(url("planner:queue")).content.decode()
    assert 'data-flag="stalled"' in page and "the render workers cannot be reached" in page


@pytest.mark.parametrize("role", LAUNCHERS)
def test_owners_and_producers_launch_takes_from_a_scene(client_as, approved, sora_scene, role):
    response = client_as(role).post(url("planner:scene-launch", approved.id, sora_scene.id), {"takes": "2"})
    assert response.status_code == 302
    assert response.url == url("planner:scene-takes", approved.id, sora_scene.id)
    assert Job.objects.filter(scene=sora_scene).count() == 2


@pytest.mark.parametrize("role", OTHERS)
def test_other_roles_may_not_launch_cancel_or_judge(client_as, approved, sora_scene, member, role):
    job = launched(sora_scene, member)[0]
    client = client_as(role)
    writes = [
        url("planner:scene-launch", approved.id, sora_scene.id),
        url("planner:plan-launch", approved.id),
        url("planner:job-cancel", job.id),
        url("planner:take-judge", approved.id, sora_scene.id, job.id),
    ]
    for write in writes:
        assert client.post(write, {"takes": "1", "verdict": "keeper"}).status_code == 403
    assert Job.objects.count() == 1 and Job.objects.get().state == "queued"


def test_another_teams_ids_are_404(client, approved, sora_scene, member, other_team):
    job = launched(sora_scene, member)[0]
    client.force_login(Membership.objects.get(team=other_team, role=Role.OWNER).user)
    team = other_team.slug
    assert client.get(url("planner:scene-takes", approved.id, sora_scene.id, team=team)).status_code == 404
    assert client.post(url("planner:scene-launch", approved.id, sora_scene.id, team=team)).status_code == 404
    assert client.post(url("planner:plan-launch", approved.id, team=team)).status_code == 404
    assert client.post(url("planner:job-cancel", job.id, team=team)).status_code == 404
    judge = url("planner:take-judge", approved.id, sora_scene.id, job.id, team=team)
    assert client.post(judge, {"verdict": "keeper"}).status_code == 404
    assert client.get(url("planner:queue")).status_code == 404  # not a member of Northwind
    assert Job.objects.get().state == "queued"


def test_writes_need_post(client_as, approved, sora_scene, member):
    job = launched(sora_scene, member)[0]
    client = client_as(Role.PRODUCER)
    assert client.get(url("planner:job-cancel", job.id)).status_code == 405
    assert client.get(url("planner:scene-launch", approved.id, sora_scene.id)).status_code == 405


@pytest.mark.parametrize("takes", ["abc", "-2", "2.5", "0", "51"])
def test_a_bad_number_of_takes_is_a_message_and_nothing_is_written(client_as, approved, sora_scene, takes):
    response = client_as(Role.PRODUCER).post(
        url("planner:scene-launch", approved.id, sora_scene.id), {"takes": takes}, follow=True
    )
    assert response.status_code == 200
    assert any("between 1 and 50" in message for message in texts(response))
    assert not Job.objects.exists()


def test_a_refused_launch_says_why(client_as, project, sora_scene):
    response = client_as(Role.PRODUCER).post(
        url("planner:scene-launch", project.id, sora_scene.id), {"takes": "1"}, follow=True
    )
    assert any("once a lead has approved its budget" in message for message in texts(response))
    assert not Job.objects.exists()


def test_a_launch_goes_back_where_it_came_from_but_never_off_site(client_as, approved, sora_scene):
    client = client_as(Role.PRODUCER)
    launch_url = url("planner:scene-launch", approved.id, sora_scene.id)
    project_url = url("planner:project", approved.id)
    assert client.post(launch_url, {"takes": "1", "next": project_url}).url == project_url
    assert (
        client.post(launch_url, {"takes": "1", "next": "https://evil.example/"}).url
        != "https://evil.example/"
    )


def test_generate_the_plan_from_the_project(client_as, approved, sora_scene):
    response = client_as(Role.PRODUCER).post(url("planner:plan-launch", approved.id), follow=True)
    assert response.redirect_chain[-1][0] == url("planner:queue") + f"?project={approved.id}"
    assert any("Launched 3 takes for 240 credits" in message for message in texts(response))


@pytest.mark.django_db(transaction=True)  # the dispatch runs when the launch commits, as in production
def test_the_producer_hears_when_the_workers_cannot_be_reached(client_as, approved, sora_scene, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(broker, "send_tasks", refuse)
    response = client_as(Role.PRODUCER).post(
        url("planner:scene-launch", approved.id, sora_scene.id), {"takes": "2"}, follow=True
    )
    assert response.status_code == 200
    assert any("the render workers cannot be reached" in message for message in texts(response))
    assert list(Job.objects.values_list("state", flat=True)) == ["queued", "queued"]


@pytest.mark.parametrize("role", LAUNCHERS)
def test_owners_and_producers_cancel_a_queued_take(client_as, approved, sora_scene, member, role):
    job = launched(sora_scene, member)[0]
    response = client_as(role).post(url("planner:job-cancel", job.id), headers=HTMX)
    assert response.status_code == 200 and "credits returned" in response.content.decode()
    assert Job.objects.get().state == "cancelled"


def test_cancelling_a_running_take_is_a_message(client_as, approved, sora_scene, member):
    job = launched(sora_scene, member)[0]
    queue_dispatch(team_id=approved.team_id)
    response = client_as(Role.PRODUCER).post(url("planner:job-cancel", job.id), follow=True)
    assert any("only a queued take can be cancelled" in message for message in texts(response))


@pytest.fixture
def take(approved, sora_scene, member, finish):
    job = launched(sora_scene, member)[0]
    queue_dispatch(team_id=approved.team_id)
    return finish(job, "succeeded")


@pytest.mark.parametrize("role", LAUNCHERS + OTHERS)
def test_every_role_sees_the_takes_and_only_launchers_judge_them(client_as, approved, sora_scene, take, role):
    page = client_as(role).get(url("planner:scene-takes", approved.id, sora_scene.id)).content.decode()
    assert "Take 1" in page and "<svg" in page and "0 of 1 keeper" in page
    assert ('aria-label="Keeper: take 1"' in page) == (role in LAUNCHERS)
    assert ("Launch takes" in page) == (role in LAUNCHERS)


@pytest.mark.parametrize("role", LAUNCHERS)
def test_marking_a_keeper_makes_the_scene_ready_for_editing(client_as, approved, sora_scene, take, role):
    response = client_as(role).post(
        url("planner:take-judge", approved.id, sora_scene.id, take.id), {"verdict": "keeper"}, headers=HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200 and page.lstrip().startswith('<section id="takes-panel"')
    assert "Ready for editing" in page and "1 of 1 keeper" in page


def test_a_bad_verdict_is_a_message(client_as, approved, sora_scene, take):
    response = client_as(Role.PRODUCER).post(
        url("planner:take-judge", approved.id, sora_scene.id, take.id), {"verdict": "maybe"}, headers=HTMX
    )
    assert response.status_code == 422 and "Mark the take keeper or reject" in response.content.decode()
    assert Job.objects.get().verdict == "pending"


def test_the_project_page_shows_launching_and_the_checklist_once_approved(
    client_as, project, sora_scene, approve
):
    page = client_as(Role.PRODUCER).get(url("planner:project", project.id)).content.decode()
    assert "Generate the plan" not in page and "Before hand-over" not in page
    approve(project)
    page = client_as(Role.PRODUCER).get(url("planner:project", project.id)).content.decode()
    assert "Generate the plan" in page and "Launch takes" in page
    assert "Before hand-over" in page and page.count('class="check-') == 6
    page = client_as(Role.VIEWER).get(url("planner:project", project.id)).content.decode()
    assert "Generate the plan" not in page and "Before hand-over" in page


@pytest.mark.parametrize(
    ("state", "refund_on_failure", "says"),
    [
        ("failed", True, "returned to the budget"),
        ("failed", False, "charged"),  # the model's policy, as settlement applies it
        ("moderated", False, "charged"),  # sora-2 charges for moderation
    ],
)
def test_the_takes_page_says_whether_an_unsuccessful_take_was_charged(
    client_as, approved, sora_scene, member, finish, state, refund_on_failure, says
):
    sora_scene.video_model.__class__.objects.filter(pk=sora_scene.video_model_id).update(
        refund_on_failure=refund_on_failure
    )
    job = launched(sora_scene, member)[0]
    queue_dispatch(team_id=approved.team_id)
    job = finish(job, state)
    assert job.is_charged == (says == "charged")
    page = (
        client_as(Role.PRODUCER).get(url("planner:scene-takes", approved.id, sora_scene.id)).content.decode()
    )
    assert f"{job.credits:,} credits, {says}</small>" in page
