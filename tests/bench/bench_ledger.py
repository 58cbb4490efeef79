"""Ledger throughput: hold+capture pairs per second with 8 concurrent workers, next to pgbench.

The figure: 8 worker processes (processes, not threads, so Python's GIL does not cap the client side),
each posting `ledger_hold` then `ledger_capture` on its own team, 12 seconds in all. Eight teams, one
per worker, because a team is the ledger's serialization point by design: throughput scales with
teams, and one team's figure is bounded by one lock's hold time instead (KETER_BENCH_LEDGER_TEAMS=1
measures that case). Each pair is two database transactions, each taking its team's lock, checking
its key, recording its outcome and passing the deferred balance trigger at commit; on PostgreSQL each
is one call of the ledger's database function, so one round trip.

The reference: pgbench's built-in tpcb-like script with 8 clients (connections) and 2 threads, on the
same server, in the same run, in a scratch database initialized afresh each run. The two are
interleaved in short rounds (pgbench, ledger, pgbench, ledger, ..., pgbench) and each side's rounds are
added up, so both see the same machine even when other work comes and goes during the run. Prints:
`bench ledger-postings <n> tps reference pgbench-tpcb <n> tps ratio <x>`.
"""

import multiprocessing
import os
import re
import shutil
import sys
import time
import uuid
from glob import glob
from pathlib import Path
from urllib.parse import urlparse

# Our own database, so a benchmark never meets another branch's schema in the shared default one.
os.environ.setdefault("KETER_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keter_bench_ledger")
# As deployed: with debugging on, Django would also time and keep every query it runs.
os.environ.setdefault("KETER_DEBUG", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402

WORKERS = 8
SECONDS = float(os.environ.get("KETER_BENCH_SECONDS", "12"))  # per side, split into the rounds
ROUNDS = int(os.environ.get("KETER_BENCH_ROUNDS", "3"))
ROUND_SECONDS = max(2, round(SECONDS / ROUNDS))
TEAMS = int(os.environ.get("KETER_BENCH_LEDGER_TEAMS", str(WORKERS)))
PAIR_CREDITS = 10


def prepare() -> list[int]:
    """A clean ledger and one funded team per worker (or TEAMS teams shared round-robin)."""
    from django.db import connection

    from keter.accounts.models import Team
    from keter.accounts.plans import load_plans
    from ledger.services import ensure_system_accounts, ledger_top_up

    with connection.cursor() as cursor:
        # TRUNCATE is not a row operation, so the append-only triggers let a scratch database reset.
        cursor.execute(
            "TRUNCATE ledger_operation, ledger_entry, ledger_transaction, ledger_holdlot, ledger_hold, "
            "ledger_lot, ledger_account RESTART IDENTITY CASCADE"
        )
    ensure_system_accounts()
    pro = next(plan for plan in load_plans() if plan.slug == "pro")
    team_ids = []
    for n in range(TEAMS):
        defaults = {"name": f"Bench {n}", "plan": pro}
        team, _ = Team.objects.get_or_create(slug=f"bench-ledger-{n}", defaults=defaults)
        ledger_top_up(team=team, credits=10_000_000, key=f"bench:fund:{n}")
        team_ids.append(team.pk)
    connection.close()
    return team_ids


def worker(index: int, team_id: int, run: str, start_at: float, stop_at: float, results) -> None:
    from django.db import connections

    from keter.accounts.models import Team
    from ledger.services import ledger_capture, ledger_hold

    connections.close_all()  # never share the parent's connection after fork
    team = Team.objects.get(pk=team_id)

    def pair(n: int) -> None:
        key = f"b:{run}:{index}:{n}"
        hold = ledger_hold(team=team, credits=PAIR_CREDITS, key=f"{key}:hold", reference=f"bench:{n}")
        ledger_capture(hold=hold, credits=PAIR_CREDITS, key=f"{key}:capture", reference=f"job:{n}")

    for n in range(5):  # warm up: connection, system account ids, code paths
        pair(-1 - n)
    while time.time() < start_at:
        time.sleep(0.001)
    pairs = 0
    while time.time() < stop_at:
        pair(pairs)
        pairs += 1
    connections.close_all()
    results.put(pairs)


def ledger_pairs_per_second(team_ids: list[int]) -> float:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    run = uuid.uuid4().hex[:8]
    start_at = time.time() + 3
    stop_at = start_at + ROUND_SECONDS
    processes = [
        context.Process(target=worker, args=(i, team_ids[i % len(team_ids)], run, start_at, stop_at, results))
        for i in range(WORKERS)
    ]
    for process in processes:
        process.start()
    pairs = sum(results.get(timeout=ROUND_SECONDS + 120) for _ in processes)
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a ledger worker failed (exit code {process.exitcode})")
    return pairs / ROUND_SECONDS


def pgbench_tps(*, initialize: bool) -> float:
    binary = shutil.which("pgbench") or next(iter(sorted(glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    if binary is None:
        raise SystemExit("pgbench not found: apt-get install postgresql-client")
    url = urlparse(benchkit.BENCH_DATABASE_URL)
    scratch = url.path.lstrip("/") + "_pgbench"
    import psycopg

    admin = benchkit.BENCH_DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [scratch]).fetchone():
            conn.execute(f'CREATE DATABASE "{scratch}"')
    host, port, user = url.hostname or "127.0.0.1", str(url.port or 5432), url.username or "postgres"
    target = ["-h", host, "-p", port, "-U", user]
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    if initialize:
        benchkit.run([binary, "-i", "-q", *target, scratch], env=env)
    seconds = str(ROUND_SECONDS)
    tpcb = [binary, "-c", "8", "-j", "2", "-T", seconds, "-b", "tpcb-like", *target, scratch]
    out = benchkit.run(tpcb, env=env)
    return float(re.search(r"tps = ([0-9.]+)", out.stdout).group(1))


def main() -> None:
    benchkit.setup_django()
    team_ids = prepare()
    references = [pgbench_tps(initialize=True)]
    figures = []
    for _ in range(ROUNDS):
        figures.append(ledger_pairs_per_second(team_ids))
        references.append(pgbench_tps(initialize=False))

    from ledger.checks import ledger_check

    report = ledger_check()
    if not report.ok:
        raise SystemExit("the benchmark left the ledger inconsistent:\n" + "\n".join(report.lines()))
    ledger_tps = sum(figures) / len(figures)
    reference = sum(references) / len(references)
    ratio = ledger_tps / reference
    benchkit.report("ledger-postings", ledger_tps, "tps", "pgbench-tpcb", reference, "tps", ratio)


if __name__ == "__main__":
    main()
