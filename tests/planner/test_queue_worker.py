"""The queue on real Celery workers: one in this process on the in-memory broker, and a `celery worker`
process on Redis and PostgreSQL that is killed mid-render and restarted. Every job settles exactly once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Sum

from keter.accounts.roles import Role
from ledger.checks import ledger_check
from ledger.models import Hold, Operation
from planner.models import Job
from planner.services.queue import queue_launch_scene, queue_sweep

ROOT = Path(__file__).resolve().parents[2]
WORKER_SESSION = "keter-test-worker"  # how the worker process's database sessions are told apart


def assert_settled_exactly_once(jobs: list[Job]) -> None:
    """Every job final, its hold resolved once, and the ledger's captures equal to the charged takes."""
    jobs = list(Job.objects.filter(id__in=[job.id for job in jobs]).select_related("hold", "video_model"))
    assert {job.state for job in jobs} <= {"succeeded", "failed", "moderated"}
    for job in jobs:
        charged = job.is_charged
        assert (job.hold.status, job.hold.captured) == (("posted", job.credits) if charged else ("voided", 0))
        keys = set(Operation.objects.filter(key__endswith=f":job:{job.id}").values_list("key", flat=True))
        settled = {f"capture:job:{job.id}", f"close:job:{job.id}"} if charged else {f"void:job:{job.id}"}
        assert settled <= keys and not ({f"void:job:{job.id}"} & keys if charged else set())
    captured = Hold.objects.filter(job__in=jobs).aggregate(total=Sum("captured"))["total"]
    assert captured == sum(job.credits for job in jobs if job.is_charged)
    report = ledger_check()
    assert report.ok, report.lines()


@pytest.mark.django_db(transaction=True)
def test_an_in_process_worker_renders_and_settles_launched_takes(
    roomy, member, settings, celery_worker, wait_until
):
    settings.KETER_SIM_SPEED = 0.002  # 64 ms a take
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=6).jobs
    ids = [job.id for job in jobs]

    def all_settled() -> bool:
        with celery_worker.between_tasks:
            return not Job.objects.filter(id__in=ids, state__in=Job.ACTIVE_STATES).exists()

    wait_until(all_settled, timeout=30, what="the worker to settle every take")
    with celery_worker.between_tasks:
        assert_settled_exactly_once(jobs)
        assert set(Job.objects.filter(id__in=ids).values_list("attempts", flat=True)) == {1}


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}?application_name={WORKER_SESSION}"


def _start_worker(log: Path, lease: float) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "KETER_QUEUE_LEASE_SECONDS": str(lease),
        "KETER_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "keter", "worker", "--pool=threads", "--concurrency=3"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _worker_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [WORKER_SESSION],
        )
        return cursor.fetchone()[0]


def _kill(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_render_still_settles_every_job_exactly_once(
    roomy, member, settings, wait_until, tmp_path
):
    from keter.celery import app

    settings.KETER_SIM_SPEED = 1 / 32  # Sora 2 renders 8 s a second: a 4 s take takes 1 s
    settings.KETER_QUEUE_LEASE_SECONDS = 2  # a lost job is sent again 2 s after its render was due
    app.control.purge()  # nothing left over from an earlier run
    log = tmp_path / "worker.log"
    worker = _start_worker(log, lease=2)
    try:
        jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=10).jobs
        ids = [job.id for job in jobs]
        settled = Job.objects.filter(id__in=ids).exclude(state__in=Job.ACTIVE_STATES)
        rendering = Job.objects.filter(id__in=ids, state="running", started_at__isnull=False)
        wait_until(
            lambda: settled.count() >= 2 and rendering.exists(),
            timeout=60,
            what=f"the worker to settle two takes and start more (log: {log.read_text()[-2000:]})",
        )
        _kill(worker)  # mid-render: those takes' messages stay unacknowledged in Redis
        # A commit the worker sent just before it died still lands: read once its sessions are gone, so a
        # take that finished between the check and the kill counts as settled, not as lost.
        wait_until(lambda: not _worker_sessions(), timeout=30, what="the dead worker's sessions to end")
        killed = set(rendering.values_list("id", flat=True))
        assert killed, "the worker was killed between renders; no take was lost mid-render"

        worker = _start_worker(log, lease=2)
        deadline = time.monotonic() + 60
        while Job.objects.filter(id__in=ids, state__in=Job.ACTIVE_STATES).exists():
            assert time.monotonic() < deadline, (
                f"jobs still active after 60 s (log: {log.read_text()[-2000:]})"
            )
            queue_sweep()  # what beat runs every 30 s: sends again the takes the dead worker held
            time.sleep(0.5)
    finally:
        _kill(worker)
    assert_settled_exactly_once(jobs)
    assert min(Job.objects.filter(id__in=killed).values_list("attempts", flat=True)) >= 2
