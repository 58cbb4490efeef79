"""Where the queue benchmark's CPU and time go: CPU milliseconds per job of the worker, PostgreSQL, Redis and
the launching process, next to the same per no-op task, and how long a slot of the team's plan takes to go
round. Not part of `make bench` (it compares nothing with a reference); run it by hand when working on the
queue's throughput:

    .venv/bin/python tests/bench/queue_cpu.py          # KETER_BENCH_QUEUE_JOBS=1500 by default here

The rate moves by ±15% from run to run on a shared two-core machine; CPU per job moves far less, so it
tells whether a change made the queue cheaper even when the rate cannot.

A team runs at most its plan's concurrent generations, so the rate is also at most the slots divided by
the time one slot takes to go round: from the settlement that hands it to a job (`dispatched_at`) through
that job's claim by a worker (`started_at`: the commit, the send, Redis, the worker's consumer) to the
settlement that frees it again (`finished_at`). With zero render time that round is queue overhead only.
"""

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KETER_BENCH_QUEUE_JOBS", "1500")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_queue  # noqa: E402  (sets the benchmark's environment)
import benchkit  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(worker_pid: int) -> dict[int, tuple[str, float]]:
    """Each party's processes, by pid: which party, and its CPU seconds so far (user + system)."""
    seen = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        if pid == worker_pid:
            party = "worker"
        elif pid == os.getpid():
            party = "launcher"
        elif command.startswith(b"postgres") or b"/postgres" in command:
            party = "postgres"
        elif b"redis-server" in command:
            party = "redis"
        else:
            continue
        seen[pid] = party, (int(fields[11]) + int(fields[12])) / TICK
    return seen


def measured(worker_pid: int, run, count: int) -> tuple[float, dict[str, float], float]:
    """The run's rate, each party's CPU milliseconds per unit, and the share of the machine they used."""
    before, start = cpu_seconds(worker_pid), time.perf_counter()
    rate = run()
    elapsed, after = time.perf_counter() - start, cpu_seconds(worker_pid)
    spent = dict.fromkeys(("worker", "postgres", "redis", "launcher"), 0.0)
    for pid, (party, seconds) in after.items():  # a process that ended meanwhile is not counted
        spent[party] += seconds - before.get(pid, (party, 0.0))[1]
    share = sum(spent.values()) / elapsed / (os.cpu_count() or 1)
    return rate, {party: seconds * 1000 / count for party, seconds in spent.items()}, share


def slot_rounds(teams, since) -> str:
    """How long the slots of the bench teams' plans took to go round, over the jobs launched since then."""
    from planner.models import Job

    jobs = Job.objects.filter(team__in=teams, queued_at__gte=since, started_at__isnull=False)
    times = list(jobs.values_list("dispatched_at", "started_at", "finished_at"))
    to_claim = [(started - dispatched).total_seconds() * 1000 for dispatched, started, _ in times]
    to_settle = [(finished - started).total_seconds() * 1000 for _, started, finished in times]
    slots = sum(team.plan.concurrent_generations for team in teams)
    cycle = statistics.mean(a + b for a, b in zip(to_claim, to_settle, strict=True))

    def spread(values):
        quartiles = statistics.quantiles(values, n=10)
        return f"median {statistics.median(values):.1f} ms (p10 {quartiles[0]:.1f}, p90 {quartiles[-1]:.1f})"

    return (
        f"slot round: dispatch to claim {spread(to_claim)}; claim to settlement {spread(to_settle)}; "
        f"mean round {cycle:.1f} ms: {slots} slots / round = at most {slots / cycle * 1000:.0f} jobs/s"
    )


def main() -> None:
    os.environ.setdefault("KETER_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    benchkit.setup_django()
    import redis
    from django.utils import timezone

    from keter.celery import app

    client = redis.Redis.from_url(app.conf.broker_url)
    app.control.purge()
    worker = bench_queue.start_worker()
    try:
        from queue_worker_app import mark

        bench_queue.wait_for_mark(client, mark)
        benches = [bench_queue.bench_team() for _ in range(bench_queue.TEAMS)]
        bench_queue.queue_rate(benches, 100)  # warm-up
        jobs, noops = bench_queue.QUEUE_JOBS, bench_queue.NOOP_TASKS
        since = timezone.now()
        queue = measured(worker.pid, lambda: bench_queue.queue_rate(benches, jobs), jobs)
        rounds = slot_rounds([bench[0] for bench in benches], since)
        noop = measured(worker.pid, lambda: bench_queue.noop_rate(client), noops)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    for name, unit, (rate, per_unit, share) in (("queue", "job", queue), ("noop", "task", noop)):
        parties = "  ".join(f"{party} {ms:.3f}" for party, ms in per_unit.items())
        print(f"{name}: {rate:.0f} {unit}s/s; CPU ms per {unit}: {parties}; {share:.0%} of the machine")
    print(rounds)


if __name__ == "__main__":
    main()
