"""Launching takes: the preconditions, each refused with nothing written, and the reservation per job."""

import random

import pytest

from keter.accounts.roles import Role
from ledger.checks import ledger_check
from ledger.models import Hold, Operation, Transaction
from ledger.selectors import team_balance
from planner.models import Job, Notification, Project, Scene, VideoModel
from planner.pricing import pricing_context
from planner.services.queue import QueueError, queue_dispatch, queue_launch_plan, queue_launch_scene
from planner.services.scenes import scene_update
from planner.services.takes import take_judge


def written() -> tuple[int, int, int]:
    """Jobs, ledger transactions and ledger operations so far: a refusal must leave these as they were."""
    return Job.objects.count(), Transaction.objects.count(), Operation.objects.count()


def launch(scene, member, takes=None, **kwargs):
    return queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=takes, **kwargs)


def test_it_refuses_to_launch_before_the_budget_is_approved(project, sora_scene, member):
    before = written()
    with pytest.raises(QueueError, match="once a lead has approved its budget"):
        launch(sora_scene, member)
    assert written() == before


def test_it_refuses_takes_beyond_the_approved_budget_and_says_what_is_left(approved, sora_scene, member):
    launch(sora_scene, member, takes=2)  # 160 of 264
    before = written()
    with pytest.raises(QueueError) as refused:
        launch(sora_scene, member, takes=2)
    assert refused.value.message == (
        "The approved budget has 104 credits left and 2 takes need 160: "
        "launch fewer takes or ask for a change order"
    )
    assert written() == before


def test_queued_and_running_takes_count_as_committed(approved, sora_scene, member, finish):
    jobs = launch(sora_scene, member, takes=3).jobs  # 240 committed of 264
    with pytest.raises(QueueError, match="24 credits left"):
        launch(sora_scene, member, takes=1)
    queue_dispatch(team_id=approved.team_id)
    finish(jobs[0], "failed")  # its 80 credits return to the budget
    assert len(launch(sora_scene, member, takes=1).jobs) == 1


def test_it_refuses_a_take_the_plan_does_not_allow(approved, sora_scene, member, demo):
    demo.plan.max_clip_seconds = 5
    demo.plan.save()
    before = written()
    with pytest.raises(QueueError, match="your plan allows clips up to 5 s"):
        launch(sora_scene, member, ctx=pricing_context(demo))
    assert written() == before


def test_it_refuses_a_quality_above_the_plan(approved, make_scene, member, demo, ctx):
    scene = make_scene(model="veo-3-1", seconds=4, quality="4K")
    demo.plan.max_quality = "1080p"
    demo.plan.save()
    before = written()
    with pytest.raises(QueueError, match="your plan allows up to 1080p"):
        launch(scene, member, ctx=pricing_context(demo))
    assert written() == before


def test_it_refuses_a_retired_model(approved, sora_scene, member, demo):
    VideoModel.objects.filter(slug="sora-2").update(is_active=False)
    before = written()
    with pytest.raises(QueueError, match="OpenAI Sora 2 is retired"):
        launch(sora_scene, member, ctx=pricing_context(demo))
    assert written() == before


def test_it_refuses_a_scene_the_model_cannot_make(approved, sora_scene, member, ctx):
    scene_update(scene=sora_scene, data={"seconds": "9"}, ctx=ctx)
    before = written()
    with pytest.raises(QueueError, match="needs fixing before launching takes: .*not 9 s"):
        launch(sora_scene, member)
    assert written() == before


def test_it_refuses_a_cut_or_deleted_scene(approved, sora_scene, member):
    before = written()
    Scene.objects.filter(pk=sora_scene.pk).update(status=Scene.Status.CUT)
    sora_scene.refresh_from_db()
    with pytest.raises(QueueError, match="is cut"):
        launch(sora_scene, member)
    Scene.objects.filter(pk=sora_scene.pk).update(status=Scene.Status.PLANNED, deleted_at="2026-01-01T00:00Z")
    with pytest.raises(QueueError, match="deleted"):
        launch(sora_scene, member)
    assert written() == before


@pytest.mark.parametrize("takes", [0, -1, 51, True, "2", 1.5])
def test_it_refuses_a_number_of_takes_that_makes_no_sense(approved, sora_scene, member, takes):
    before = written()
    with pytest.raises(QueueError, match="between 1 and 50 takes"):
        launch(sora_scene, member, takes=takes)
    assert written() == before


def test_it_refuses_another_teams_member(approved, sora_scene, other_team):
    from keter.accounts.models import Membership

    before = written()
    with pytest.raises(QueueError, match="another team"):
        queue_launch_scene(scene=sora_scene, by=Membership.objects.filter(team=other_team).first())
    assert written() == before


def test_a_launch_moves_each_take_out_of_the_budget_and_into_a_hold_of_its_own(approved, sora_scene, member):
    balance = team_balance(approved.team)
    jobs = launch(sora_scene, member, takes=2).jobs
    assert [(job.state, job.credits, job.take_number) for job in jobs] == [
        ("queued", 80, 1),
        ("queued", 80, 2),
    ]
    budget = Hold.objects.get(pk=approved.budget_hold_id)
    assert (budget.credits, budget.released, budget.open_credits) == (264, 160, 104)
    for job in jobs:
        assert (job.hold.credits, job.hold.status, job.hold.reference) == (80, "pending", f"job:{job.id}")
        keys = set(Transaction.objects.filter(reference=f"job:{job.id}").values_list("key", flat=True))
        assert keys == {f"reserve:job:{job.id}", f"hold:job:{job.id}"}
    # Credits moved between two holds: the team's available and held balances did not change.
    after = team_balance(approved.team)
    assert (after.available, after.held) == (balance.available, balance.held)
    approved.refresh_from_db()
    sora_scene.refresh_from_db()
    assert (approved.status, sora_scene.status) == (Project.Status.IN_PRODUCTION, Scene.Status.IN_PRODUCTION)
    assert ledger_check().ok


def test_a_job_records_what_was_asked_and_its_seed(approved, sora_scene, member, ctx):
    scene_update(scene=sora_scene, data={"prompt": "A lighthouse at dawn"}, ctx=ctx)
    job = launch(sora_scene, member, takes=1, rng=random.Random(7)).jobs[0]
    job.refresh_from_db()
    assert job.seed == random.Random(7).randrange(2**31)
    assert job.params["seconds"] == 8 and job.params["quality"] == "720p"
    assert job.params["prompt"] == "A lighthouse at dawn"
    assert float(job.success_rate) == 0.35
    assert (job.video_model.slug, job.launched_by, job.team_id) == (
        "sora-2",
        member(Role.PRODUCER).user,
        approved.team_id,
    )


def test_the_default_is_what_is_left_of_the_planned_takes(approved, sora_scene, member, finish):
    jobs = launch(sora_scene, member).jobs
    assert len(jobs) == 3  # 3 planned, none launched
    queue_dispatch(team_id=approved.team_id)
    for job, state in zip(jobs, ["succeeded", "failed", "failed"], strict=True):
        finish(job, state)
    assert len(launch(sora_scene, member).jobs) == 2  # 3 planned − 1 that came out


def test_the_default_launches_at_least_one_take(approved, sora_scene, member):
    launch(sora_scene, member, takes=2)
    assert len(launch(sora_scene, member).jobs) == 1  # 3 planned − 2 in the queue


def test_take_numbers_count_on_across_launches(approved, sora_scene, member):
    launch(sora_scene, member, takes=1)
    assert [job.take_number for job in launch(sora_scene, member, takes=2).jobs] == [2, 3]


def test_generate_the_plan_launches_the_scenes_that_still_need_keepers(
    project, make_scene, approve, member, finish
):
    first = make_scene(model="sora-2", seconds=4, planned_takes_override=2)  # 40 a take
    second = make_scene(model="sora-2", seconds=4, planned_takes_override=3)
    cut = make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    approve(project)
    Scene.objects.filter(pk=cut.pk).update(status=Scene.Status.CUT)
    launch_ = queue_launch_plan(project=project, by=member(Role.PRODUCER))
    assert sorted((job.scene_id, job.take_number) for job in launch_.jobs) == [
        (first.id, 1), (first.id, 2), (second.id, 1), (second.id, 2), (second.id, 3),
    ]  # fmt: skip
    # The plan is in the queue: nothing left to launch, and it says why.
    with pytest.raises(QueueError, match="Nothing to launch: .*has used its planned takes"):
        queue_launch_plan(project=project, by=member(Role.PRODUCER))


def test_generate_the_plan_skips_scenes_with_their_keepers(project, make_scene, approve, member, finish):
    done = make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    todo = make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    approve(project)

    job = launch(done, member, takes=1).jobs[0]
    queue_dispatch(team_id=project.team_id)
    take_judge(job=finish(job, "succeeded"), by=member(Role.PRODUCER), verdict="keeper")
    assert {job.scene_id for job in queue_launch_plan(project=project, by=member(Role.PRODUCER)).jobs} == {
        todo.id
    }


def test_a_launch_tells_the_leads_when_the_budget_crosses_a_threshold(approved, sora_scene, member):
    launch(sora_scene, member, takes=2)  # 160 of 264: past 50%
    subjects = set(Notification.objects.filter(project=approved).values_list("subject", flat=True))
    assert "Spring campaign has used 50% of its budget" in subjects
    assert "Spring campaign has used 80% of its budget" not in subjects
