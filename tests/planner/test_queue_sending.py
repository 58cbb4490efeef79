"""What a dispatch sends to a real broker, and what a take's claim leaves on its database connection."""

import json

import pytest
import redis
from django.db import connection

from keter.accounts.roles import Role
from keter.celery import app
from planner.models import Job
from planner.services.queue import Dispatch, queue_launch_scene, send_jobs, take_free_slots
from planner.services.renders import job_claim


@pytest.fixture
def scene(project, make_scene, approve):
    scene = make_scene(model="sora-2", seconds=4, planned_takes_override=3)
    approve(project, credits=2000)
    return scene


@pytest.mark.redis
def test_a_dispatch_sends_each_job_its_task_in_launch_order(scene, member, demo, settings):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    app.control.purge()
    jobs = queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=3).jobs
    result = Dispatch()

    send_jobs([job.id for job in jobs], result)  # batched into one pipeline on Redis

    messages = [json.loads(raw) for raw in reversed(client.lrange("celery", 0, -1))]
    app.control.purge()
    assert result.unsent == []
    assert [message["headers"]["task"] for message in messages] == ["planner.tasks.render_job"] * 3
    assert [message["headers"]["argsrepr"] for message in messages] == [f"({job.id},)" for job in jobs]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_less_for_the_disk_but_the_next_settlement_waits_again(scene, member, demo):
    (job,) = queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=1).jobs
    Job.objects.filter(pk=job.pk).update(state="running")

    assert not connection.in_atomic_block
    assert job_claim(job_id=job.pk) is not None  # its own transaction, committed without waiting

    # The setting was local to the claim's transaction: a settlement on this connection waits again.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    assert Job.objects.get(pk=job.pk).started_at is not None


@pytest.mark.postgres
def test_slots_are_handed_out_in_one_round_trip_that_sees_the_previous_holders_work(scene, member, demo):
    jobs = queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=5).jobs

    first = take_free_slots(team_id=demo.id)
    again = take_free_slots(team_id=demo.id)

    assert first == [job.id for job in jobs[: demo.plan.concurrent_generations]]
    assert again == []
