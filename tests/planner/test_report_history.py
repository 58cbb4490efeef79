"""A generated year (`manage.py generate_history`) is one consistent story told by the ledger and the
planner together: the ledger checks out, every job stands behind its ledger hold under the queue's keys,
and every report figure is the sum of the generated jobs, computed here independently."""

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from keter.accounts.models import Membership, Team
from keter.accounts.roles import Role
from ledger.checks import ledger_check
from ledger.models import Hold, Operation
from planner.models import BudgetVersion, Job, Project, Scene
from planner.reports import ReportFilters, cost_report, usage_by, usage_total

SETTLED = {"succeeded", "failed", "moderated"}


def generate(slug: str, entries: int, seed: int = 4) -> Team:
    call_command(
        "generate_history", "--entries", str(entries), "--team-slug", slug, "--seed", str(seed),
        stdout=io.StringIO(),
    )  # fmt: skip
    return Team.objects.get(slug=slug)


@pytest.fixture
def year(db) -> Team:
    return generate("history-films", 6_000)


def whole_year() -> ReportFilters:
    today = timezone.localdate()
    return ReportFilters(date_from=today - timedelta(days=370), date_to=today)


def test_a_generated_history_passes_every_ledger_check(year):
    report = ledger_check()
    assert report.ok, report.violations[:10]


def test_it_writes_projects_approvals_scenes_and_jobs_over_the_year(year):
    jobs = Job.objects.filter(team=year)
    assert jobs.count() > 500
    assert set(jobs.values_list("state", flat=True)) >= {"succeeded", "failed", "moderated"}
    assert jobs.filter(verdict="keeper").exists() and jobs.filter(verdict="rejected").exists()
    assert not jobs.exclude(state="succeeded").exclude(verdict="pending").exists()
    first, last = min(j.queued_at for j in jobs), max(j.queued_at for j in jobs)
    assert last - first > timedelta(days=300)
    projects = Project.objects.filter(team=year)
    assert projects.filter(status="delivered").exists() and projects.filter(status="in_production").exists()
    assert BudgetVersion.objects.filter(project__team=year, kind="change_order").exists()
    assert Scene.objects.filter(project__team=year, status="done").exists()
    # Who did what: the team's lead approved, its producers launched.
    roles = dict(Membership.objects.filter(team=year).values_list("user_id", "role"))
    assert {roles[u] for u in jobs.values_list("launched_by_id", flat=True).distinct()} == {Role.PRODUCER}
    versions = BudgetVersion.objects.filter(project__team=year)
    assert {roles[u] for u in versions.values_list("decided_by_id", flat=True).distinct()} == {Role.LEAD}


def test_every_job_stands_behind_its_ledger_hold_under_the_queues_keys(year):
    keys = set(Operation.objects.filter(team=year).values_list("key", flat=True))
    for job in Job.objects.filter(team=year).select_related("hold", "video_model"):
        assert (job.hold.reference, job.hold.key, job.hold.credits) == (
            job.reference,
            f"hold:job:{job.pk}",
            job.credits,
        )
        assert f"reserve:job:{job.pk}" in keys
        if job.state in ("queued", "running"):
            assert job.hold.status == Hold.Status.PENDING
        elif job.hold.captured:
            assert (job.hold.captured, job.hold.status) == (job.credits, Hold.Status.POSTED)
            assert {f"capture:job:{job.pk}", f"close:job:{job.pk}"} <= keys
            assert job.state == "succeeded" or (
                job.state == "moderated" and not job.video_model.refund_on_moderation
            )
        else:
            assert job.state in ("failed", "moderated") and job.hold.status == Hold.Status.VOIDED
            assert f"void:job:{job.pk}" in keys
    for project in Project.objects.filter(team=year).select_related("budget_hold"):
        first = project.budget_versions.get(number=1)
        assert (project.budget_hold.key, project.budget_hold.reference) == (
            f"hold:approval:{first.pk}",
            f"project:{project.pk}",
        )
        assert project.original_budget == first.approved_credits
        later = project.budget_versions.filter(number__gt=1)
        assert project.change_order_credits == sum(v.approved_credits for v in later)


def test_the_usage_report_equals_sums_over_the_generated_jobs(year):
    jobs = list(Job.objects.filter(team=year, state__in=SETTLED).select_related("hold", "video_model"))
    spent = {job.pk: job.hold.captured - job.hold.refunded for job in jobs}
    total = usage_total(year, whole_year())
    assert total.takes == len(jobs)
    assert total.captured == sum(spent.values())
    assert total.returned == sum(job.credits for job in jobs) - sum(spent.values())
    assert total.wasted == sum(spent[j.pk] for j in jobs if j.state != "succeeded")
    assert total.seconds == sum(j.params["seconds"] for j in jobs if j.state == "succeeded")
    keepers = [j for j in jobs if j.verdict == "keeper"]
    assert total.keepers == len(keepers) > 0
    assert total.keeper_seconds == sum(j.params["seconds"] for j in keepers)
    by_model = defaultdict(int)
    for job in jobs:
        by_model[job.video_model.name] += spent[job.pk]
    assert {row.label: row.captured for row in usage_by(year, whole_year(), "model")} == by_model
    by_month = defaultdict(int)
    for job in jobs:
        by_month[timezone.localtime(job.finished_at).strftime("%Y-%m")] += spent[job.pk]
    assert {row.label: row.captured for row in usage_by(year, whole_year(), "month")} == by_month


def test_the_cost_report_equals_sums_over_the_generated_jobs(year):
    actual, committed = defaultdict(int), defaultdict(int)
    for job in Job.objects.filter(team=year).select_related("hold"):
        actual[job.project_id] += job.hold.captured - job.hold.refunded
        if job.state in ("queued", "running"):
            committed[job.project_id] += job.credits
    rows = cost_report(year)
    assert len(rows) == Project.objects.filter(team=year).count()
    for row in rows:
        approved = BudgetVersion.objects.filter(project=row.project, status="approved")
        assert row.final == sum(v.approved_credits for v in approved)
        assert (row.actual, row.committed) == (actual[row.project.pk], committed[row.project.pk])


def test_the_reports_page_runs_as_many_queries_whatever_the_history(
    client, db, django_assert_max_num_queries
):
    """Aggregates in SQL: the page's queries do not grow with the jobs, projects or months it covers."""

    small, large = generate("small-history", 800, seed=5), generate("large-history", 8_000, seed=6)
    project = Project.objects.filter(team=large).first()
    since = (timezone.localdate() - timedelta(days=365)).isoformat()
    pages = [(small, {}), (large, {}), (large, {"date_from": since}), (large, {"project": project.pk})]
    counts = {}
    for team, query in pages:
        client.force_login(Membership.objects.get(team=team, role=Role.FINANCE).user)
        url = reverse("planner:reports", args=[team.slug])
        client.get(url, query)  # the session and the process's caches, warm
        with django_assert_max_num_queries(QUERIES) as queries:
            response = client.get(url, query)
        assert response.status_code == 200
        counts[(team.slug, tuple(query))] = len(queries)
    # Ten times the history or a longer period: the same queries (a chosen project is looked up, once).
    assert (
        counts[("small-history", ())]
        == counts[("large-history", ())]
        == counts[("large-history", ("date_from",))]
    )


QUERIES = 23  # the session, the member, the filters' choices, the aggregates and names, the runway


def test_the_same_seed_generates_the_same_planner_story(db):
    end = datetime(2026, 6, 1, tzinfo=UTC)
    from ledger.history import generate_history

    first = generate_history(entries=1_500, team_slugs=["seed-a"], seed=9, end=end)
    second = generate_history(entries=1_500, team_slugs=["seed-b"], seed=9, end=end)

    def story(result):
        jobs = Job.objects.filter(team=result.teams[0]).order_by("id")
        return [(j.credits, j.state, j.verdict, j.video_model_id, j.params["seconds"]) for j in jobs]

    assert story(first) == story(second) != []
