"""Takes of one team finishing at the same moment on one worker's threads: each settles exactly once, and
the slots they free go to the next takes in line, never beyond the plan's limit."""

import threading
import time

import pytest
from django.db import connection
from django.db.models import Sum

from keter.accounts.roles import Role
from ledger.checks import ledger_check
from ledger.models import Hold
from planner.models import Job
from planner.services.queue import queue_dispatch, queue_launch_scene
from planner.services.renders import job_claim, job_outcome, job_settle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def settle_from_threads(job_ids: list[int]) -> list[bool]:
    """Claim and settle each job on a thread of its own, all released together, each twice (a task
    delivered twice); returns what each first settlement answered."""
    start = threading.Barrier(len(job_ids))
    answers: dict[int, bool] = {}
    errors: list[BaseException] = []

    def run(job_id: int) -> None:
        try:
            job = job_claim(job_id=job_id)
            state = job_outcome(seed=job.seed, success_rate=job.success_rate)
            start.wait()
            answers[job_id] = job_settle(job_id=job_id, state=state, job=job)
            assert not job_settle(job_id=job_id, state=state)  # delivered twice: settles once
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a settlement is stuck"
    if errors:
        raise errors[0]
    return [answers[job_id] for job_id in job_ids]


def test_takes_finishing_together_each_settle_once_and_hand_their_slots_on(roomy, member, demo, sent):
    limit = demo.plan.concurrent_generations
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=limit * 2).jobs
    running = list(
        Job.objects.filter(id__in=[j.id for j in jobs], state="running").values_list("id", flat=True)
    )
    assert len(running) == limit

    assert settle_from_threads(running) == [True] * limit

    jobs = list(Job.objects.filter(id__in=[j.id for j in jobs]).select_related("hold", "video_model"))
    finished = [job for job in jobs if job.id in running]
    assert all(job.state in ("succeeded", "failed", "moderated") for job in finished)
    for job in finished:
        charged = job.is_charged
        assert (job.hold.status, job.hold.captured) == (("posted", job.credits) if charged else ("voided", 0))
    captured = Hold.objects.filter(job__in=finished).aggregate(total=Sum("captured"))["total"]
    assert captured == sum(job.credits for job in finished if job.is_charged)
    # The freed slots went to the next takes in line, and only as many as were freed.
    assert sorted(job.id for job in jobs if job.state == "running") == sorted(sent[limit:])
    assert len([job for job in jobs if job.state == "running"]) == limit
    assert ledger_check().ok


def test_dispatches_racing_on_their_own_connections_never_hand_out_a_slot_twice(roomy, member, demo, sent):
    limit = demo.plan.concurrent_generations
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=limit * 3).jobs
    ids = [job.id for job in jobs]
    # The running takes end (as far as the slots are concerned): every slot is free again.
    Job.objects.filter(id__in=ids, state="running").update(state="succeeded")
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def dispatch() -> None:
        try:
            start.wait()
            queue_dispatch(team_id=demo.id, send=False)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    running = Job.objects.filter(id__in=ids, state="running").order_by("id").values_list("id", flat=True)
    assert list(running) == ids[limit : limit * 2]  # the next in line, as many as the plan allows


def test_takes_finishing_close_together_wait_for_each_other_and_settle_as_one(
    roomy, member, demo, sent, monkeypatch
):
    from planner.services import renders

    # Wide margins, so that a slow machine cannot tell the two cases apart by accident.
    monkeypatch.setattr(renders, "GATHER_SECONDS", 1.0)
    monkeypatch.setattr(renders, "BUSY_SECONDS", 60.0)
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=3).jobs
    claimed = [job_claim(job_id=job.id) for job in jobs]
    assert all(claimed)

    def settle(job) -> None:
        try:
            assert job_settle(job_id=job.pk, state="succeeded", job=job)
        finally:
            connection.close()

    # The first take finishes alone: it settles without waiting for anyone.
    started = time.monotonic()
    job_settle(job_id=claimed[0].pk, state="succeeded", job=claimed[0])
    assert time.monotonic() - started < renders.GATHER_SECONDS
    # The next two finish a moment apart while the team is busy: the first to get the turn waits, and
    # the second joins its settlement.
    first = threading.Thread(target=settle, args=(claimed[1],))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=settle, args=(claimed[2],))
    second.start()
    for thread in (first, second):
        thread.join(30)
        assert not thread.is_alive(), "a settlement is stuck"

    finished = dict(Job.objects.filter(id__in=[job.id for job in jobs]).values_list("id", "finished_at"))
    # One settlement is one statement with one moment for all its jobs.
    assert finished[jobs[1].id] == finished[jobs[2].id] != finished[jobs[0].id]
    assert Job.objects.filter(id__in=[job.id for job in jobs], state="succeeded").count() == 3
    assert ledger_check().ok
