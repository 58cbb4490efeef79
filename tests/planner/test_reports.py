import csv
import io
import math
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from keter.accounts.roles import Role
from ledger.models import Hold
from planner.models import Job
from planner.reports import ReportFilters, cost_report, usage_by, usage_total
from planner.services.queue import queue_dispatch, queue_launch_scene
from planner.services.takes import take_judge


@pytest.fixture
def history(approved, sora_scene, member, finish, sent):
    """Three Sora 2 takes of 80 credits: two succeed (one kept, one rejected), one fails (refunded)."""
    producer = member(Role.PRODUCER)
    launch = queue_launch_scene(scene=sora_scene, by=producer, takes=3)
    queue_dispatch(team_id=approved.team_id, send=False)
    jobs = [Job.objects.get(pk=j.pk) for j in launch.jobs]
    kept, rejected, _ = finish(jobs[0]), finish(jobs[1]), finish(jobs[2], "failed")
    take_judge(job=kept, by=producer, verdict="keeper")
    take_judge(job=rejected, by=producer, verdict="rejected")
    return approved


def today_filters(**kwargs):
    today = timezone.localdate()
    return ReportFilters(date_from=today - timedelta(days=1), date_to=today, **kwargs)


def test_usage_figures_match_the_ledger_and_the_jobs(history, demo):
    jobs = Job.objects.filter(team=demo)
    # Independent sums: the ledger holds say what was captured, the jobs what was asked.
    captured = sum(h.captured - h.refunded for h in Hold.objects.filter(job__in=jobs))
    reserved = sum(j.credits for j in jobs)
    total = usage_total(demo, today_filters())
    assert (total.takes, total.captured, total.returned) == (3, captured, reserved - captured) == (3, 160, 80)
    assert total.seconds == 16  # two succeeded 8 s takes
    assert (total.keepers, total.per_usable_take, total.per_usable_second) == (1, 160, 20.0)
    assert total.wasted == 0  # Sora refunds failures
    [by_model] = usage_by(demo, today_filters(), "model")
    assert (by_model.label, by_model.captured) == ("OpenAI Sora 2", 160)
    [by_member] = usage_by(demo, today_filters(), "member")
    assert by_member.label == "producer@demo.keter"


def test_filters_narrow_every_figure(history, demo, member):
    assert usage_total(demo, today_filters(model_slug="veo-3-1")).takes == 0
    assert usage_total(demo, today_filters(quality="720p")).takes == 3
    assert usage_total(demo, today_filters(member_id=member(Role.LEAD).user_id)).takes == 0
    long_ago = ReportFilters(
        date_from=timezone.localdate() - timedelta(days=400),
        date_to=timezone.localdate() - timedelta(days=300),
    )
    assert usage_total(demo, long_ago).takes == 0


def test_the_cost_report_has_the_accountants_columns(history, demo, sora_scene):
    [row] = cost_report(demo)
    assert (row.original, row.change_orders, row.final) == (264, 0, 264)
    assert (row.actual, row.committed) == (160, 0)
    # One keeper wanted, one kept: nothing left to complete.
    assert row.to_complete == 0
    assert (row.estimated_final, row.variance) == (160, 104)


def test_estimate_to_complete_counts_the_missing_keepers_at_the_success_rate(approved, sora_scene, demo):
    [row] = cost_report(demo)
    rate = float(sora_scene.success_rate)
    assert row.to_complete == math.ceil(1 / rate * 80)
    assert row.variance == 264 - row.to_complete


@pytest.mark.parametrize(
    "role, status",
    [(Role.OWNER, 200), (Role.FINANCE, 200), (Role.LEAD, 200), (Role.PRODUCER, 403), (Role.VIEWER, 403)],
)
def test_reports_are_for_finance_owners_and_leads(client_as, demo, role, status):
    client = client_as(role)
    for name in ("planner:reports", "planner:usage-csv", "planner:usage-xlsx", "planner:costs-csv"):
        assert client.get(reverse(name, args=[demo.slug])).status_code == status


def test_another_teams_reports_are_404(client_as, other_team):
    assert client_as(Role.FINANCE).get(reverse("planner:reports", args=[other_team.slug])).status_code == 404


def test_the_page_shows_the_same_numbers_as_the_services(client_as, history, demo):
    page = client_as(Role.FINANCE).get(reverse("planner:reports", args=[demo.slug])).content.decode()
    assert 'data-figure="captured">160<' in page
    assert "Credits captured per month, by model" in page and "<svg" in page
    assert "Cost report per project" in page and ">+104<" in page


def test_csv_and_xlsx_exports_re_read_with_the_same_numbers(client_as, history, demo):
    client = client_as(Role.FINANCE)
    response = client.get(reverse("planner:usage-csv", args=[demo.slug]), {"by": "model"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["model", "takes", "seconds generated", "credits captured"]
    assert rows[1][:5] == ["OpenAI Sora 2", "3", "16", "160", "80"]
    assert rows[-1][0] == "Total"
    xlsx = client.get(reverse("planner:usage-xlsx", args=[demo.slug]), {"by": "model"})
    sheet = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content)), read_only=True).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:4] == ["model", "takes", "seconds generated", "credits captured"]
    assert values[1][:5] == ["OpenAI Sora 2", 3, 16, 160, 80]


def test_bad_filters_are_explained_and_the_page_still_answers(client_as, demo):
    response = client_as(Role.FINANCE).get(
        reverse("planner:reports", args=[demo.slug]), {"date_from": "yesterday", "quality": "8K"}
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Enter a date like 2026-12-31" in page and "Select a valid choice" in page
