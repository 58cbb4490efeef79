"""Shared set-up for the benchmark scripts (`make bench`): never collected by pytest.

Each script measures one figure and a reference in the same run and prints one line:
`bench <name> <figure> <unit> reference <ref-name> <ref-figure> <unit> ratio <x>`.
They run against PostgreSQL (KETER_BENCH_DATABASE_URL, default a `keter_bench` database on localhost),
created and migrated here, so a benchmark never touches the development or test data.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DATABASE_URL = os.environ.get(
    "KETER_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/keter_bench"
)


def setup_django(*, migrate: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keter.settings")
    _ensure_database()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    _vacuum_analyze()


def _vacuum_analyze() -> None:
    """Vacuum and analyze the bench database. This machine's PostgreSQL runs without autovacuum (CI's
    configuration): the tables the benches grow run after run would otherwise be measured full of dead
    rows and with no statistics for the planner, as no deployment runs them."""
    import psycopg

    with psycopg.connect(BENCH_DATABASE_URL, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def _ensure_database() -> None:
    import psycopg

    name = BENCH_DATABASE_URL.rsplit("/", 1)[1]
    admin_url = BENCH_DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def median_ms(fn, *, repeat: int = 30, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def interleaved_median_ms(*fns, repeat: int = 30, warmup: int = 3) -> list[float]:
    """The median of each function, timed in turns: on a busy machine a figure and its reference then see the
    same load, where one timed after the other would not."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, times in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
    return [statistics.median(times) for times in samples]


def report(name: str, figure: float, unit: str, ref_name: str, ref: float, ref_unit: str, ratio: float):
    print(f"bench {name} {figure:.2f} {unit} reference {ref_name} {ref:.2f} {ref_unit} ratio {ratio:.2f}")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)
