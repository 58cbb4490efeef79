"""Fixtures for the generation queue: an approved project, ways to drive jobs without a broker, and a real
in-process Celery worker."""

import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from keter.accounts.roles import Role


@pytest.fixture(autouse=True)
def instant_renders(settings):
    # Renders are simulated; in tests they take no time unless a test says otherwise.
    settings.KETER_SIM_SPEED = 0.0


@pytest.fixture
def approve(member, demo):
    """approve(project, credits=None) -> the project with its budget approved by the lead (at the planned
    figure, or `credits`), after a top-up of 5,000 credits."""
    from ledger.services import ledger_top_up
    from planner.services.approvals import budget_approve, budget_submit

    def run(project, credits=None):
        ledger_top_up(team=demo, credits=5000, key=f"test:queue:top-up:{project.id}", reference="test")
        version = budget_submit(project=project, by=member(Role.PRODUCER))
        basis = "custom" if credits else "planned"
        budget_approve(version=version, by=member(Role.LEAD), basis=basis, credits=credits)
        project.refresh_from_db()
        return project

    return run


@pytest.fixture
def sora_scene(make_scene):
    """A valid scene: Sora 2, 8 s at 80 credits a take, 1 keeper wanted, 3 planned takes."""
    return make_scene(model="sora-2", seconds=8, planned_takes_override=3)


@pytest.fixture
def roomy(project, make_scene, approve):
    """A scene of 4 s Sora takes (40 credits) in a project approved for 2,000 credits: room for many."""
    scene = make_scene(model="sora-2", seconds=4, planned_takes_override=3)
    approve(project, credits=2000)
    return scene


@pytest.fixture
def approved(project, sora_scene, approve):
    """The project approved at the planned figure: 3 takes × 80 + 10% = 264 credits."""
    return approve(project)


@pytest.fixture
def sent(monkeypatch):
    """The job ids sent to the workers, in order (nothing reaches a broker)."""
    from keter import broker
    from planner import tasks

    ids: list[int] = []

    def send_tasks(task, arguments):
        assert task.name == tasks.render_job.name
        ids.extend(args[0] for args in arguments)

    monkeypatch.setattr(broker, "send_tasks", send_tasks)
    return ids


@pytest.fixture
def finish():
    """finish(job, state) -> claim a running job and settle it in `state`, as a worker would."""
    from planner.services.renders import job_claim, job_settle

    def run(job, state="succeeded"):
        assert job_claim(job_id=job.pk) is not None
        assert job_settle(job_id=job.pk, state=state)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def run_queue():
    """run_queue(team) -> dispatch and render every job of the team until none is left, as workers would
    (outcomes from the jobs' seeds); returns the states they settled in."""
    from planner.models import Job
    from planner.services.queue import queue_dispatch
    from planner.services.renders import job_run

    def run(team):
        states = []
        while True:
            queue_dispatch(team_id=team.id)
            running = list(Job.objects.filter(team=team, state="running").values_list("id", flat=True))
            if not running:
                return states
            states += [job_run(job_id=job_id, sleep=lambda seconds: None) for job_id in running]

    return run


@contextmanager
def broker(app, url: str):
    """Point the Celery app at another broker for a while (its connection pools follow). The read and
    write URLs are set too: `broker_url` itself gives way to a CELERY_BROKER_URL in the environment."""
    names = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport_options")
    saved = {name: app.conf.get(name) for name in names}

    def drop_pools():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(broker_url=url, broker_read_url=url, broker_write_url=url, broker_transport_options={})
    drop_pools()
    try:
        yield app
    finally:
        app.conf.update(saved)
        drop_pools()


@pytest.fixture
def celery_worker():
    """A real Celery worker (solo pool) in a thread of this process, on the in-memory broker.

    Use it with `django_db(transaction=True)`: the worker sees only committed rows. An in-memory SQLite
    test database lives in one connection, which the worker thread borrows, as the live server does; so
    the test reads between tasks (`with worker.between_tasks:`), never inside a task's transaction.
    """
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun, task_prerun
    from django.db import connections

    from keter.celery import app

    shared = {c.alias: c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()}
    between_tasks = threading.Lock()

    def borrow(**kwargs):
        between_tasks.acquire()
        for alias, conn in shared.items():
            connections[alias] = conn

    def give_back(**kwargs):
        if not shared:
            connections.close_all()  # the worker thread's own connections: none may outlive the test
        between_tasks.release()

    for conn in shared.values():
        conn.inc_thread_sharing()
    task_prerun.connect(borrow, weak=False)
    task_postrun.connect(give_back, weak=False)
    try:
        with (
            broker(app, "memory://"),
            start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10),
        ):
            yield SimpleNamespace(app=app, between_tasks=between_tasks)
    finally:
        task_prerun.disconnect(borrow)
        task_postrun.disconnect(give_back)
        for conn in shared.values():
            conn.dec_thread_sharing()


@pytest.fixture
def wait_until():
    """wait_until(condition, timeout=30, what=...) polls until `condition()` is true, and fails (never
    hangs) after `timeout` seconds."""

    def wait(condition, *, timeout: float = 30.0, every: float = 0.05, what: str = "the condition"):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(every)

    return wait
