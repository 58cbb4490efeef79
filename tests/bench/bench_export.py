"""Benchmark: the ledger register's CSV download of 1,000,000 entries, next to psql's \\copy of them.

The export runs in a child process through the download's own code path (URL, decorators, view, the
streaming response), its body written to /dev/null; the reference is `psql \\copy (<the same SELECT>)
TO '/dev/null' CSV` in the same run. Peak memory is the child's maximum resident set size. Prints:

    bench export-csv <s> s reference psql-copy <s> s ratio <x> peak-rss <MB> MB

The history is generated once per bench database (`generate_history`, a few minutes) and reused.
Targets: ratio <= 3, peak memory under 200 MB.
"""

import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402

TEAM = "bench-export"
ENTRIES = 1_000_000
RUNS = 3


def ensure_history() -> None:
    from django.core.management import call_command
    from django.db import connection

    from ledger.models import Entry

    have = Entry.objects.filter(transaction__team__slug=TEAM).count()
    if have >= ENTRIES:
        return
    if have:
        raise SystemExit(f"{TEAM} has {have:,} entries, fewer than {ENTRIES:,}: use a fresh bench database")
    print(f"Generating {ENTRIES:,} ledger entries for {TEAM} (once per bench database)...", file=sys.stderr)
    call_command("generate_history", entries=ENTRIES, team_slugs=[TEAM], seed=8, stdout=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_entry, ledger_transaction, ledger_account, accounts_user")


def export_once() -> None:
    """In the child: download the CSV as a finance member would, and report the time and the rows."""
    benchkit.setup_django(migrate=False)
    from django.test import Client
    from django.urls import reverse

    from keter.accounts.models import Membership

    member = Membership.objects.filter(team__slug=TEAM, role="finance").select_related("user").first()
    client = Client(HTTP_HOST="localhost")
    client.force_login(member.user)
    start = time.perf_counter()
    response = client.get(reverse("ledger:register-csv", args=[TEAM]))
    assert response.status_code == 200, response.status_code
    lines = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.streaming_content:
            lines += chunk.count(b"\r\n")
            sink.write(chunk)
    elapsed = time.perf_counter() - start
    print(f"{elapsed:.6f} {lines - 1}")


def psql_copy_command() -> list[str]:
    from django.db import connection

    from keter.accounts.models import Team
    from ledger.reports import register_entries

    sql, params = register_entries(Team.objects.get(slug=TEAM)).query.sql_with_params()
    with connection.cursor() as cursor:
        select = cursor.cursor.mogrify(sql, params)
    select = " ".join(select.split())  # \copy takes its query on one line
    copy = f"\\copy ({select}) TO '/dev/null' CSV HEADER"
    return ["psql", benchkit.BENCH_DATABASE_URL, "-X", "-q", "-c", copy]


def main() -> None:
    if sys.argv[1:] == ["--child"]:
        export_once()
        return
    benchkit.setup_django()
    ensure_history()
    command = psql_copy_command()
    exports, copies = [], []
    # Alternate the two, so a busy moment on the machine weighs on both alike; medians of RUNS each.
    for _ in range(RUNS):
        child = benchkit.run([sys.executable, __file__, "--child"])
        seconds, rows = child.stdout.split()
        if int(rows) < ENTRIES:
            raise SystemExit(f"the export wrote {rows} rows, expected {ENTRIES:,}")
        exports.append(float(seconds))
        start = time.perf_counter()
        benchkit.run(command)
        copies.append(time.perf_counter() - start)
    # The largest resident set of any child waited for (Linux: KiB): the export's, psql's is a fraction.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    export, copy = statistics.median(exports), statistics.median(copies)
    print(
        f"bench export-csv {export:.2f} s reference psql-copy {copy:.2f} s "
        f"ratio {export / copy:.2f} peak-rss {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
