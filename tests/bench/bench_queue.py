"""Generation queue throughput: jobs launched and settled per second, end to end, with zero render time and
one worker process on Redis and PostgreSQL, next to Celery's own no-op task throughput measured with the
same worker process and broker in the same run.

    bench queue-settle <n> jobs/s reference celery-noop <n> tasks/s ratio <x>

Runs against its own database (KETER_BENCH_QUEUE_DATABASE_URL, default keter_bench_queue on localhost) and
the broker in CELERY_BROKER_URL (default Redis database 14), whose default queue it purges.
"""

import os
import statistics
import subprocess
import sys
import time
import uuid

os.environ.setdefault(
    "KETER_BENCH_DATABASE_URL",
    os.environ.get("KETER_BENCH_QUEUE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keter_bench_queue"),
)
os.environ["KETER_SIM_SPEED"] = "0"  # renders take no time: the figure is the queue's own overhead
# As deployed: with debugging on, Django would also time and keep every query the worker runs.
os.environ.setdefault("KETER_DEBUG", "0")
sys.path.insert(0, os.path.dirname(__file__))

import benchkit  # noqa: E402

NOOP_TASKS = int(os.environ.get("KETER_BENCH_NOOP_TASKS", 3000))
QUEUE_JOBS = int(os.environ.get("KETER_BENCH_QUEUE_JOBS", 300))
ROUNDS = int(os.environ.get("KETER_BENCH_ROUNDS", 3))
# One worker process for both figures, with the same pool: threads overlap the queue's database round trips.
POOL = os.environ.get("KETER_BENCH_POOL", "threads")
CONCURRENCY = os.environ.get("KETER_BENCH_CONCURRENCY", "10")
# Each team is one serialization point (its ledger lock); more teams measure the queue across teams.
TEAMS = int(os.environ.get("KETER_BENCH_TEAMS", 1))
TIMEOUT = 300


def start_worker() -> subprocess.Popen:
    level = os.environ.get("KETER_BENCH_WORKER_LOG_LEVEL", "WARNING")  # INFO logs every task's time
    env = os.environ | {
        "DATABASE_URL": benchkit.BENCH_DATABASE_URL,
        "KETER_LOG_LEVEL": level,
        # What a deployment sets for a busy worker: keep its PostgreSQL connection between tasks.
        "KETER_CELERY_DB_REUSE_MAX": os.environ.get("KETER_CELERY_DB_REUSE_MAX", "1000"),
    }
    command = [sys.executable, "-m", "celery", "-A", "tests.bench.queue_worker_app", "worker"]
    command += [f"--pool={POOL}", f"--concurrency={CONCURRENCY}", f"--loglevel={level}"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    log = open(os.environ.get("KETER_BENCH_WORKER_LOG", os.devnull), "ab")  # noqa: SIM115 (the worker's)
    return subprocess.Popen(command, cwd=benchkit.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_mark(redis_client, mark) -> float:
    """Send a marker task and wait until the worker has run it (and so everything sent before it)."""
    key = f"bench:mark:{uuid.uuid4()}"
    mark.delay(key)
    deadline = time.monotonic() + TIMEOUT
    while (value := redis_client.get(key)) is None:
        if time.monotonic() > deadline:
            raise SystemExit("bench queue: the worker did not answer in time")
        time.sleep(0.002)
    return float(value)


def noop_rate(redis_client) -> float:
    from queue_worker_app import mark, noop

    start = time.time()
    for _ in range(NOOP_TASKS):
        noop.delay()
    end = wait_for_mark(redis_client, mark)
    return NOOP_TASKS / (end - start)


def bench_team():
    from keter.accounts.models import Membership, Plan, Team, User
    from keter.accounts.plans import load_plans
    from keter.accounts.roles import Role
    from ledger.services import ledger_top_up
    from planner.catalog import load_catalog
    from planner.pricing import pricing_context
    from planner.services.approvals import budget_approve, budget_submit
    from planner.services.projects import project_create
    from planner.services.scenes import scene_add, scene_update

    load_plans()
    load_catalog()
    suffix = uuid.uuid4().hex[:8]
    # Enterprise: ten takes render at a time, so the plan's limit is not what is measured.
    team = Team.objects.create(
        name=f"Bench {suffix}", slug=f"bench-{suffix}", plan=Plan.objects.get(slug="enterprise")
    )
    producer, lead = (
        Membership.objects.create(
            team=team, user=User.objects.create_user(f"{role}-{suffix}@bench.keter", "bench"), role=role
        )
        for role in (Role.PRODUCER, Role.LEAD)
    )
    ledger_top_up(team=team, credits=5_000_000, key=f"bench:top-up:{suffix}", reference="bench")
    project = project_create(by=producer, name="Bench")
    ctx = pricing_context(team)
    scene = scene_add(project=project, ctx=ctx).scene
    scene = scene_update(scene=scene, data={"model": "sora-2", "seconds": "4"}, ctx=ctx).scene
    version = budget_submit(project=project, by=producer)
    budget_approve(version=version, by=lead, basis="custom", credits=4_000_000)
    return team, producer, scene, ctx


def queue_rate(benches, jobs: int) -> float:
    """Launch `jobs` takes (50 a launch, round-robin over the teams) and wait until every one settled."""
    from planner.models import Job
    from planner.services.queue import MAX_TAKES_PER_LAUNCH, queue_launch_scene

    start = time.time()
    launched = []
    while len(launched) < jobs:
        team, producer, scene, ctx = benches[(len(launched) // MAX_TAKES_PER_LAUNCH) % len(benches)]
        takes = min(MAX_TAKES_PER_LAUNCH, jobs - len(launched))
        launched += queue_launch_scene(scene=scene, by=producer, takes=takes, ctx=ctx).jobs
    ids = [job.id for job in launched]
    # The bench teams have no other jobs in flight (each round waits for the one before), so "any of
    # theirs still active" is the same question as "any of these", at a fraction of the cost: the poll
    # shares the machine with what it measures.
    active = Job.objects.filter(team__in=[bench[0] for bench in benches], state__in=Job.ACTIVE_STATES)
    deadline = time.monotonic() + TIMEOUT
    while active.exists():
        if time.monotonic() > deadline:
            raise SystemExit("bench queue: jobs still active after the time-out")
        time.sleep(0.05)  # the end is read from finished_at: polling less only spares the machine
    finished = (
        Job.objects.filter(id__in=ids).order_by("-finished_at").values_list("finished_at", flat=True)[0]
    )
    return jobs / (finished.timestamp() - start)


def main() -> None:
    os.environ.setdefault("KETER_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    benchkit.setup_django()
    import redis

    from keter.celery import app
    from ledger.checks import ledger_check

    redis_client = redis.Redis.from_url(app.conf.broker_url)
    app.control.purge()
    worker = start_worker()
    try:
        from queue_worker_app import mark

        wait_for_mark(redis_client, mark)  # the worker is up
        benches = [bench_team() for _ in range(TEAMS)]
        queue_rate(benches, 100)  # warm-up
        noops, jobs = [], []
        for _ in range(ROUNDS):  # interleaved, so both see the same machine
            noops.append(noop_rate(redis_client))
            jobs.append(queue_rate(benches, QUEUE_JOBS))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    report = ledger_check()
    if not report.ok:
        raise SystemExit("bench queue: " + "; ".join(report.violations[:5]))
    noop, queue = statistics.median(noops), statistics.median(jobs)
    benchkit.report("queue-settle", queue, "jobs/s", "celery-noop", noop, "tasks/s", queue / noop)


if __name__ == "__main__":
    main()
