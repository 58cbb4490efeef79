"""Benchmark: the reports page on a year of history (1,000,000 ledger entries and the jobs behind them),
next to a trivial signed-in page (the team page) timed in turns with it in the same run.

The page is asked for in-process through its own code path (URL, middleware, decorators, view, template)
as the team's finance member; the figure is the median server time. Three pages: the default period (the
last 90 days), the whole year, and the whole year narrowed by model, quality and member. Prints:

    bench reports-page <ms> ms reference trivial-view <ms> ms target <1000 ms
    bench reports-page-year <ms> ms reference trivial-view <ms> ms target <1000 ms
    bench reports-page-filtered <ms> ms reference trivial-view <ms> ms target <1000 ms

The history is the export benchmark's (`bench_export.ensure_history`): generated once per bench database.
"""

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402
from bench_export import TEAM, ensure_history  # noqa: E402

TARGET_MS = 1000
REPEAT = 9


def main() -> None:
    benchkit.setup_django()
    ensure_history()
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from keter.accounts.models import Membership
    from planner.models import Job

    jobs = Job.objects.filter(team__slug=TEAM)
    if not jobs.exists():
        raise SystemExit(f"{TEAM} has ledger history but no jobs (generated before the planner's part): "
                         "use a fresh bench database")  # fmt: skip
    member = Membership.objects.filter(team__slug=TEAM, role="finance").select_related("user").first()
    client = Client(HTTP_HOST="localhost")
    client.force_login(member.user)
    reports = reverse("planner:reports", args=[TEAM])
    trivial = reverse("accounts:team", args=[TEAM])
    year = {"date_from": (timezone.localdate() - timedelta(days=364)).isoformat()}
    # The busiest model, quality and producer: the narrowest filters still cover the most rows.
    busiest = (
        jobs.values("video_model__slug", "params__quality", "launched_by_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    filtered = year | {
        "model": busiest["video_model__slug"],
        "quality": busiest["params__quality"],
        "member": busiest["launched_by_id"],
    }

    def get(url, query=None):
        def fetch():
            response = client.get(url, query or {})
            assert response.status_code == 200, (url, query, response.status_code)

        return fetch

    for name, query in [
        ("reports-page", {}),
        ("reports-page-year", year),
        ("reports-page-filtered", filtered),
    ]:
        page, reference = benchkit.interleaved_median_ms(
            get(reports, query), get(trivial), repeat=REPEAT, warmup=2
        )
        print(f"bench {name} {page:.2f} ms reference trivial-view {reference:.2f} ms target <{TARGET_MS} ms")


if __name__ == "__main__":
    main()
