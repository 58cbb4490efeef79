"""What a dispatch sends to a real broker, and what a take's claim leaves on its database connection."""

import json
import socket
import subprocess
import time
from contextlib import contextmanager, nullcontext

import pytest
import redis
from celery._state import _task_stack
from django.db import connection
from django.utils import timezone

from keter import broker as keter_broker
from keter.accounts.roles import Role
from keter.celery import app
from keter.sql import prepared
from planner.models import Job
from planner.services import renders
from planner.services.queue import (
    Dispatch,
    free_slot_statements,
    queue_launch_scene,
    send_jobs,
    take_free_slots,
)
from planner.services.renders import job_claim
from tests.planner.conftest import broker


@pytest.mark.redis
def test_a_dispatch_sends_each_job_its_task_in_launch_order(roomy, member, demo, settings):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    app.control.purge()
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=3).jobs
    result = Dispatch()

    send_jobs([job.id for job in jobs], result)  # batched into one pipeline on Redis

    messages = [json.loads(raw) for raw in reversed(client.lrange("celery", 0, -1))]
    app.control.purge()
    assert result.unsent == []
    assert [message["headers"]["task"] for message in messages] == ["planner.tasks.render_job"] * 3
    assert [message["headers"]["argsrepr"] for message in messages] == [f"({job.id},)" for job in jobs]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_less_for_the_disk_but_the_next_settlement_waits_again(roomy, member, demo):
    (job,) = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=1).jobs
    Job.objects.filter(pk=job.pk).update(state="running")

    assert not connection.in_atomic_block
    assert job_claim(job_id=job.pk) is not None  # its own transaction, committed without waiting

    # The setting was local to the claim's transaction: a settlement on this connection waits again.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    assert Job.objects.get(pk=job.pk).started_at is not None


@pytest.mark.postgres
def test_the_claim_a_worker_sends_turns_off_waiting_for_the_disk_for_its_own_commit(roomy, member, demo):
    (job,) = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=1).jobs
    Job.objects.filter(pk=job.pk).update(state="running")
    now = timezone.now()

    # The statement a claim outside a transaction runs, run here inside one so its effect can be seen
    # before the commit (it is the commit the setting is for).
    (row,) = prepared(renders._claim_sql(own_transaction=True), [now, now, 120.0, job.pk, "running"])

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("off",)
    assert row[0] == job.pk


@pytest.mark.postgres
def test_the_pipelined_hand_out_returns_the_jobs_it_moved_within_the_plans_limit(roomy, member, demo):
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=5).jobs

    first = take_free_slots(team_id=demo.id)
    again = take_free_slots(team_id=demo.id)

    assert first == [job.id for job in jobs[: demo.plan.concurrent_generations]]
    assert again == []


@pytest.mark.postgres
def test_the_hand_out_reads_the_teams_active_jobs_only_even_as_a_generic_prepared_plan(roomy, member, demo):
    """A busy worker runs the hand-out as a prepared statement, whose generic plan knows no parameter:
    the line and the running count must still come from the index of active jobs, not from the team's
    whole history (a team with thousands of takes made every dispatch read them all)."""
    queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=2)
    _lock, (move, params) = free_slot_statements(team_id=demo.id)
    numbered = move
    for number in range(1, len(params) + 1):
        numbered = numbered.replace("%s", f"${number}", 1)

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")  # the tables are small here; the plan is the point
        cursor.execute(f"PREPARE hand_out AS {numbered}")
        cursor.execute(f"EXPLAIN EXECUTE hand_out({', '.join(['%s'] * len(params))})", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE hand_out")

    scans = [line for line in plan.splitlines() if "planner_job " in line and "Scan" in line]
    line_and_count = [line for line in scans if "planner_job_pkey" not in line]
    assert len(line_and_count) == 2, plan
    assert all("using planner_job_active_line " in line for line in line_and_count), plan


@pytest.fixture
def short_lived_redis(tmp_path):
    """A Redis server of this test's own, on a free port, that the test can shut down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", client
    server.kill()
    server.wait()


@pytest.mark.redis
def test_a_broker_lost_after_connecting_leaves_the_takes_waiting_in_line(
    roomy, member, demo, short_lived_redis
):
    url, client = short_lived_redis
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=3).jobs
    with broker(app, url):
        send_jobs([jobs[0].id], Dispatch())  # the connection is made and pooled
        client.shutdown(nosave=True)
        Job.objects.filter(id__in=[job.id for job in jobs]).update(state="running")
        result = Dispatch()

        send_jobs([job.id for job in jobs], result)  # the pipeline fails on its way: delivery uncertain

    assert result.unsent == [job.id for job in jobs]
    assert set(Job.objects.filter(id__in=result.unsent).values_list("state", flat=True)) == {"queued"}


@pytest.mark.postgres
def test_a_claim_is_an_update_in_place_that_touches_none_of_the_jobs_indexes(roomy, member, demo):
    """A claim writes only the job's start, attempts and lease, which no index holds: PostgreSQL updates
    the row in place (a HOT update) instead of adding an entry to each of the job's indexes."""
    (job,) = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=1).jobs
    Job.objects.filter(pk=job.pk).update(state="running")

    def updates() -> tuple[int, int]:  # this transaction's, so far
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
                [Job._meta.db_table],
            )
            return cursor.fetchone()

    before = updates()
    assert job_claim(job_id=job.pk) is not None
    after = updates()

    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


@pytest.mark.redis
def test_a_fresh_broker_gets_the_queue_declared_with_the_first_take_and_every_take_arrives(
    roomy, member, demo, short_lived_redis
):
    """Sending skips kombu's per-message declaration check once the queue is declared on the connection
    (a cost, not a behaviour: kombu would not declare it twice either); the first take sent to a fresh
    broker must still declare it."""
    url, client = short_lived_redis
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=3).jobs
    with broker(app, url):
        send_jobs([jobs[0].id], Dispatch())
        declared = bool(client.exists("_kombu.binding.celery"))
        send_jobs([job.id for job in jobs[1:]], Dispatch())

    assert declared
    arrived = [json.loads(raw)["headers"]["argsrepr"] for raw in reversed(client.lrange("celery", 0, -1))]
    assert arrived == [f"({job.id},)" for job in jobs]


@contextmanager
def inside_a_task(task, *, task_id: str, root_id: str):
    """As if a worker were running `task` (id `task_id`, in a workflow started by `root_id`): what it
    sends then carries those ids as its parent and root."""
    task.push_request(id=task_id, root_id=root_id, called_directly=False)
    _task_stack.push(task)
    try:
        yield
    finally:
        _task_stack.pop()
        task.pop_request()


@pytest.mark.redis
@pytest.mark.parametrize("sender", ["a producer", "a worker's task"])
def test_a_take_sent_by_a_dispatch_is_the_message_apply_async_sends(roomy, member, demo, settings, sender):
    """The dispatch builds its messages with Celery and pushes them itself (a cheaper path): the worker
    must receive what `render_job.apply_async` would have sent, apart from the ids of the message itself."""
    from planner.tasks import render_job

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    (job,) = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=1).jobs
    app.control.purge()
    in_a_task = sender != "a producer"

    with inside_a_task(render_job, task_id="t-1", root_id="r-1") if in_a_task else nullcontext():
        render_job.apply_async((job.id,))
        send_jobs([job.id], Dispatch())

    assert client.llen("celery") == 2  # both on the queue's list, nowhere else
    reference, sent = (json.loads(raw) for raw in reversed(client.lrange("celery", 0, -1)))
    app.control.purge()
    for message in (reference, sent):  # its own ids: new for every message
        own = message["headers"].pop("id")
        assert message["properties"].pop("correlation_id") == own
        assert len(message["properties"].pop("delivery_tag")) == 36
        if not in_a_task:
            assert message["headers"].pop("root_id") == own
    assert sent == reference
    if in_a_task:
        assert (sent["headers"]["parent_id"], sent["headers"]["root_id"]) == ("t-1", "r-1")


def test_a_broker_other_than_redis_gets_the_takes_through_celery(roomy, member, demo):
    """The embedded mode's filesystem broker, or any but Redis: the messages go out through `send_task`."""
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=3).jobs
    with broker(app, "memory://"):
        result = Dispatch()
        send_jobs([job.id for job in jobs], result)

        with app.connection_for_read() as connection_, connection_.SimpleQueue("celery") as line:
            arrived = [line.get(timeout=1) for _ in jobs]
            for message in arrived:
                message.ack()

    assert result.unsent == []
    assert [message.headers["argsrepr"] for message in arrived] == [f"({job.id},)" for job in jobs]
    assert {message.headers["task"] for message in arrived} == {"planner.tasks.render_job"}


@app.task(name="tests.kept_result", ignore_result=False)
def kept_result(n: int) -> int:
    return n


@pytest.mark.redis
def test_a_task_whose_results_are_kept_is_sent_through_celery(monkeypatch):
    """Its result backend must hear of every message sent, which only `send_task` does."""
    through_celery = []
    monkeypatch.setattr(app, "send_task", lambda name, args, **options: through_celery.append((name, args)))

    keter_broker.send_tasks(kept_result, [(1,), (2,)])

    assert through_celery == [("tests.kept_result", (1,)), ("tests.kept_result", (2,))]
