"""Slots, renders and settlement: FIFO per team within the plan's limit, and every job settled once."""

import random

import pytest
from kombu.exceptions import OperationalError

from keter import broker
from keter.accounts.roles import Role
from ledger.checks import ledger_check
from ledger.models import Hold, Operation, Transaction
from planner import tasks
from planner.models import Job, VideoModel
from planner.selectors import project_spend
from planner.services.queue import QueueError, queue_cancel, queue_dispatch, queue_launch_scene, queue_sweep
from planner.services.renders import MODERATION_RATE, job_claim, job_outcome, job_run, job_settle

# The test's database work is committed as it goes, as a worker's is (not one transaction rolled back).
OUTSIDE_A_TRANSACTION = pytest.mark.django_db(transaction=True)


def launch(scene, member, takes, **kwargs):
    return queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=takes, **kwargs).jobs


def states(jobs) -> list[str]:
    return [Job.objects.get(pk=job.pk).state for job in jobs]


def test_a_team_runs_no_more_jobs_than_its_plan_allows_and_the_rest_wait_in_order(roomy, member, demo):
    jobs = launch(roomy, member, 5)
    assert demo.plan.concurrent_generations == 3
    queue_dispatch(team_id=demo.id)
    queue_dispatch(team_id=demo.id)  # a second dispatch finds no free slot
    assert states(jobs) == ["running"] * 3 + ["queued"] * 2


def test_a_freed_slot_goes_to_the_oldest_waiting_job(roomy, member, demo, finish, make_scene):
    first = launch(roomy, member, 3)
    later = make_scene(model="sora-2", seconds=4, planned_takes_override=1)
    second = launch(roomy, member, 1) + launch(later, member, 1)
    queue_dispatch(team_id=demo.id)
    finish(first[1], "succeeded")  # settling frees a slot and dispatches on commit (not in this test)
    queue_dispatch(team_id=demo.id)
    assert states(second) == ["running", "queued"]


def test_dispatch_sends_one_task_per_job_once_committed(
    roomy, member, demo, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        jobs = launch(roomy, member, 4)
    assert sent == [job.id for job in jobs[:3]]


def test_a_success_captures_the_jobs_credits(roomy, member, demo, finish):
    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    finish(job, "succeeded")
    hold = Hold.objects.get(pk=job.hold_id)
    assert (hold.status, hold.captured, hold.released) == ("posted", 40, 0)
    capture = Transaction.objects.get(key=f"capture:job:{job.id}")
    assert (capture.kind, capture.reference) == ("capture", f"job:{job.id}")
    assert Operation.objects.filter(key=f"close:job:{job.id}").exists()
    roomy.project.refresh_from_db()
    assert project_spend(roomy.project) == type(project_spend(roomy.project))(actual=40, committed=0)
    assert ledger_check().ok


def test_a_failure_returns_the_credits_to_the_project_budget(roomy, member, demo, finish):
    job = launch(roomy, member, 1)[0]
    budget = Hold.objects.get(pk=roomy.project.budget_hold_id)
    assert budget.open_credits == 2000 - 40
    queue_dispatch(team_id=demo.id)
    finish(job, "failed")
    budget.refresh_from_db()
    hold = Hold.objects.get(pk=job.hold_id)
    assert (hold.status, hold.captured) == ("voided", 0)
    assert Transaction.objects.get(key=f"void:job:{job.id}").reference == f"job:{job.id}"
    assert Transaction.objects.filter(key=f"return:job:{job.id}", hold=budget).exists()
    assert budget.open_credits == 2000
    assert project_spend(roomy.project).actual == 0
    assert ledger_check().ok


def test_moderation_is_charged_when_the_model_charges_for_it(roomy, member, demo, finish):
    assert not VideoModel.objects.get(slug="sora-2").refund_on_moderation
    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    finish(job, "moderated")
    assert Hold.objects.get(pk=job.hold_id).captured == 40


def test_moderation_is_refunded_when_the_model_refunds_it(project, make_scene, approve, member, demo, finish):
    scene = make_scene(model="runway-gen4-turbo", seconds=5, image_refs=1, planned_takes_override=2)
    approve(project)
    assert VideoModel.objects.get(slug="runway-gen4-turbo").refund_on_moderation
    job = launch(scene, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    finish(job, "moderated")
    assert (Hold.objects.get(pk=job.hold_id).status, project_spend(project).actual) == ("voided", 0)


def test_cancelling_a_queued_take_returns_its_credits(roomy, member, demo):
    jobs = launch(roomy, member, 4)
    queue_dispatch(team_id=demo.id)
    budget = Hold.objects.get(pk=roomy.project.budget_hold_id)
    queue_cancel(job=jobs[3], by=member(Role.PRODUCER))
    budget.refresh_from_db()
    assert (states(jobs)[3], budget.open_credits) == ("cancelled", 2000 - 3 * 40)
    assert Hold.objects.get(pk=jobs[3].hold_id).status == "voided"
    assert ledger_check().ok


def test_only_a_queued_take_can_be_cancelled(roomy, member, demo):
    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    before = Transaction.objects.count()
    with pytest.raises(QueueError, match="Take 1 is running: only a queued take can be cancelled"):
        queue_cancel(job=job, by=member(Role.PRODUCER))
    assert Transaction.objects.count() == before


def test_a_task_delivered_twice_settles_once(roomy, member, demo):
    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    first = tasks.render_job.run(job.id)
    postings = Transaction.objects.count()
    assert first in {"succeeded", "failed", "moderated"}
    assert tasks.render_job.run(job.id) is None  # the second delivery finds it settled
    job.refresh_from_db()
    assert (job.state, job.attempts, Transaction.objects.count()) == (first, 1, postings)
    assert ledger_check().ok


def test_a_second_delivery_while_the_first_renders_does_nothing(roomy, member, demo):
    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    assert job_claim(job_id=job.id) is not None
    assert job_run(job_id=job.id, sleep=lambda s: None) is None  # someone else is rendering it
    assert Job.objects.get(pk=job.pk).state == "running"


def test_a_job_settles_once_even_if_two_renders_finish(roomy, member, demo):
    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    assert job_settle(job_id=job.id, state="succeeded")
    postings = Transaction.objects.count()
    assert not job_settle(job_id=job.id, state="succeeded")
    assert not job_settle(job_id=job.id, state="failed")
    assert (Job.objects.get(pk=job.pk).state, Transaction.objects.count()) == ("succeeded", postings)
    assert Hold.objects.get(pk=job.hold_id).captured == 40


@pytest.mark.parametrize(
    "transaction_block",
    # The caller's (the batch is a savepoint in it), or none: a busy worker's, whose round trip is the
    # transaction and is refused whole in the server.
    ["the caller's", pytest.param("none", marks=[pytest.mark.postgres, OUTSIDE_A_TRANSACTION])],
)
def test_a_batch_with_a_job_settled_meanwhile_settles_the_others_once(roomy, member, demo, transaction_block):
    from planner.services.renders import _load_for_settling, _settle, _Settlement

    done, other = launch(roomy, member, 2)
    queue_dispatch(team_id=demo.id, send=False)
    assert job_settle(job_id=done.id, state="failed", send=False)  # another delivery got there first
    postings = Transaction.objects.count()
    batch = [
        _Settlement(_load_for_settling(done.id), "succeeded"),
        _Settlement(_load_for_settling(other.id), "succeeded"),
    ]
    _settle(batch)
    assert [(s.settled, s.error) for s in batch] == [(False, None), (True, None)]
    assert states([done, other]) == ["failed", "succeeded"]
    # Nothing of the refused attempt stayed: the first job's credits moved once (returned, by the delivery
    # that settled it), the second's once (captured).
    assert Transaction.objects.count() == postings + 1
    assert not Operation.objects.filter(key=f"capture:job:{done.id}").exists()
    assert Hold.objects.get(pk=other.hold_id).captured == 40
    assert ledger_check().ok


def test_the_outcome_is_replayed_from_the_seed(roomy, member, demo):
    job = launch(roomy, member, 1, rng=random.Random(3))[0]
    queue_dispatch(team_id=demo.id)
    assert job_run(job_id=job.id, sleep=lambda s: None) == job_outcome(
        seed=job.seed, success_rate=job.success_rate
    )
    assert all(
        job_outcome(seed=s, success_rate=0.4) == job_outcome(seed=s, success_rate=0.4) for s in range(50)
    )


def test_outcomes_follow_the_success_rate():
    outcomes = [job_outcome(seed=seed, success_rate=0.4) for seed in range(4000)]
    assert abs(outcomes.count("moderated") / 4000 - MODERATION_RATE) < 0.01
    assert abs(outcomes.count("succeeded") / 4000 - 0.4 * (1 - MODERATION_RATE)) < 0.03


def test_a_render_takes_the_models_time_scaled_by_the_sim_speed(roomy, member, demo, settings):
    settings.KETER_SIM_SPEED = 0.05
    job = launch(roomy, member, 1)[0]  # Sora 2: 8 render seconds per output second, 4 s
    assert job.render_seconds == pytest.approx(8 * 4 * 0.05)
    queue_dispatch(team_id=demo.id)
    slept = []
    job_run(job_id=job.id, sleep=slept.append)
    assert slept == [pytest.approx(1.6)]


def test_the_sweeper_sends_again_a_job_whose_worker_died(
    roomy, member, demo, sent, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    job = launch(roomy, member, 1)[0]
    queue_dispatch(team_id=demo.id)
    assert job_claim(job_id=job.id) is not None  # then the worker is killed mid-render
    assert queue_sweep().resent == []  # its lease has not run out yet
    later = timezone.now() + timedelta(seconds=settings.KETER_QUEUE_LEASE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        sweep = queue_sweep(now=later)
    assert (sweep.resent, sent) == ([job.id], [job.id])
    assert job_run(job_id=job.id, sleep=lambda s: None) is not None  # the new delivery renders it
    assert Job.objects.get(pk=job.pk).attempts == 2
    assert ledger_check().ok


def test_the_sweeper_starts_queued_jobs_that_no_dispatch_picked_up(
    roomy, member, demo, sent, django_capture_on_commit_callbacks
):
    jobs = launch(roomy, member, 2)  # committed, but the dispatch on commit never ran (a crash, say)
    with django_capture_on_commit_callbacks(execute=True):
        sweep = queue_sweep()
    assert sweep.dispatched == sent == [job.id for job in jobs]
    assert states(jobs) == ["running", "running"]


def test_a_broker_that_is_down_leaves_the_takes_queued(
    roomy, member, demo, monkeypatch, django_capture_on_commit_callbacks
):
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(broker, "send_tasks", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        launch_ = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=2)
    assert launch_.is_waiting_for_broker
    assert states(launch_.jobs) == ["queued", "queued"]
    monkeypatch.undo()  # the broker is back: the sweeper starts them
    sent = []
    monkeypatch.setattr(broker, "send_tasks", lambda task, arguments: sent.extend(a[0] for a in arguments))
    with django_capture_on_commit_callbacks(execute=True):
        queue_sweep()
    assert sent == [job.id for job in launch_.jobs]


def test_settling_frees_the_slot_for_the_next_job(
    roomy, member, demo, sent, django_capture_on_commit_callbacks
):
    jobs = launch(roomy, member, 4)
    queue_dispatch(team_id=demo.id)
    with django_capture_on_commit_callbacks(execute=True):
        job_run(job_id=jobs[0].id, sleep=lambda s: None)
    assert sent == [jobs[3].id]
    assert states(jobs)[3] == "running"


def test_closing_the_project_cancels_its_waiting_takes(roomy, member, demo, finish):
    from planner.services.approvals import project_cancel

    jobs = launch(roomy, member, 4)
    queue_dispatch(team_id=demo.id)
    project_cancel(project=roomy.project, by=member(Role.OWNER), comment="Client walked away")
    assert states(jobs) == ["running", "running", "running", "cancelled"]
    finish(jobs[0], "succeeded")  # a take already rendering still settles, on its own hold
    finish(jobs[1], "failed")  # and a failure's credits stay with the team: the budget is closed
    assert Hold.objects.get(pk=jobs[0].hold_id).captured == 40
    assert Operation.objects.get(key=f"return:job:{jobs[1].id}").outcome == "refused"
    assert ledger_check().ok


def test_a_run_of_many_jobs_keeps_the_ledger_exact(roomy, member, demo, run_queue):
    jobs = launch(roomy, member, 30)
    run_queue(demo)
    settled = {job.id: job for job in Job.objects.filter(id__in=[j.id for j in jobs]).select_related("hold")}
    charged = [job for job in settled.values() if job.state == "succeeded" or job.state == "moderated"]
    assert all(job.state in {"succeeded", "failed", "moderated"} for job in settled.values())
    assert sum(job.hold.captured for job in settled.values()) == sum(job.credits for job in charged)
    assert project_spend(roomy.project).actual == 40 * len(charged)
    assert ledger_check().ok
