import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from keter.accounts.models import Plan
from keter.accounts.roles import Role
from ledger.models import Entry
from ledger.reports import daily_balances, runway
from ledger.services import ledger_capture, ledger_grant, ledger_hold, ledger_refund

CAN_READ = [Role.OWNER, Role.FINANCE, Role.LEAD]
CANNOT_READ = [Role.PRODUCER, Role.VIEWER]
REPORT_URLS = ["ledger:balance-report", "ledger:register-csv", "ledger:register-xlsx", "ledger:journal"]


def url(team, name="ledger:balance-report") -> str:
    return reverse(name, args=[team.slug])


def closing_balance(team, day: date) -> int:
    """Available at the end of `day`, summed from the entries' credits (not their balance-after chain)."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.get_current_timezone())
    credits = Entry.objects.filter(
        account__team=team, account__kind="available", transaction__created_at__lt=end
    ).values_list("credits", flat=True)
    return sum(credits)


def test_the_balance_at_each_days_end_matches_the_sum_of_the_entries(ledger_story):
    start = ledger_story.first_day - timedelta(days=2)
    days = daily_balances(ledger_story.team, date_from=start, date_to=timezone.localdate())
    assert [d.day for d in days] == [start + timedelta(days=n) for n in range(13)]
    assert [d.available for d in days] == [closing_balance(ledger_story.team, d.day) for d in days]
    assert days[0].available == 0 and days[-1].available == 6_500
    quiet = ledger_story.first_day + timedelta(days=8)  # nothing happened that day: yesterday's balance
    by_day = {d.day: d.available for d in days}
    assert by_day[quiet] == by_day[quiet - timedelta(days=1)]


def test_a_range_starting_mid_story_carries_the_balance_from_before_it(ledger_story):
    start = ledger_story.first_day + timedelta(days=4)
    days = daily_balances(ledger_story.team, date_from=start, date_to=start + timedelta(days=2))
    assert [d.available for d in days] == [closing_balance(ledger_story.team, d.day) for d in days]
    assert days[0].available != 0


def test_days_after_today_are_not_forecast_as_balances(ledger_story):
    today = timezone.localdate()
    days = daily_balances(
        ledger_story.team, date_from=today - timedelta(days=1), date_to=today + timedelta(days=5)
    )
    assert [d.day for d in days] == [today - timedelta(days=1), today]


def test_days_follow_the_reporting_time_zone(ledger_story, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9: the afternoon's transactions belong to the next day there
    start = ledger_story.first_day - timedelta(days=1)
    days = daily_balances(ledger_story.team, date_from=start, date_to=timezone.localdate())
    assert [d.available for d in days] == [closing_balance(ledger_story.team, d.day) for d in days]


def test_the_runway_is_the_balance_over_the_trailing_thirty_days_burn(ledger_story):
    team = ledger_story.team
    since = timezone.now() - timedelta(days=30)
    usage = Entry.objects.filter(
        transaction__team=team, account__kind="usage", transaction__created_at__gte=since
    ).values_list("transaction__kind", "credits")
    captured = sum(c for kind, c in usage if kind == "capture")
    refunded = -sum(c for kind, c in usage if kind == "refund")
    assert (captured, refunded) == (600, 50)
    forecast = runway(team)
    assert forecast.available == 6_500 and forecast.spent == 550
    assert forecast.burn_per_day == Decimal("18.33")
    assert forecast.days_left == 354  # 6,500 / (550 / 30) = 354.5: whole days
    assert forecast.runs_out_on == timezone.localdate() + timedelta(days=354)
    today = timezone.localdate()
    first_of_next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)  # billing day 1
    assert forecast.next_grant_on == first_of_next_month
    assert forecast.next_grant_credits == team.plan.monthly_credits


def test_only_the_last_thirty_days_burn(team, clock):
    now = clock.now
    clock.advance(days=-31)  # a capture older than the window does not count
    ledger_grant(team=team, credits=10_000, key="old:grant")
    hold = ledger_hold(team=team, credits=5_000, key="old:hold", reference="project:old")
    old = ledger_capture(hold=hold, credits=900, key="old:capture", reference="job:old")
    clock.set(now)
    ledger_capture(hold=hold, credits=300, key="new:capture", reference="job:new")
    ledger_refund(hold=hold, credits=30, key="new:refund", reference="job:old", corrects=old)
    forecast = runway(team)
    assert forecast.spent == 270 and forecast.burn_per_day == Decimal("9.00")
    assert forecast.available == 5_030 and forecast.days_left == 5_030 * 30 // 270


def test_with_nothing_spent_there_is_no_runway_and_a_one_off_plan_has_no_next_grant(team, plans):
    team.plan = Plan.objects.get(slug="free")
    team.save()
    ledger_grant(team=team, credits=125, key="free:grant")
    forecast = runway(team)
    assert (forecast.spent, forecast.days_left, forecast.runs_out_on) == (0, None, None)
    assert forecast.next_grant_on is None and forecast.next_grant_credits == 0


@pytest.mark.parametrize("role", CAN_READ)
def test_owner_finance_and_leads_see_the_balance_report(client_as, ledger_story, role):
    page = client_as(role).get(url(ledger_story.team))
    assert page.status_code == 200
    html = page.content.decode()
    sentence = re.sub(
        r"\s+", " ", re.search(r'<p id="runway-sentence">(.*?)</p>', html, re.S).group(1)
    ).strip()
    next_grant = runway(ledger_story.team).next_grant_on
    assert sentence == (
        "354 days of credits left at the last 30 days' burn of 18.33/day; "
        f"next plan grant (2,250 credits) on {next_grant.day} {next_grant:%b %Y}."
    )
    assert 'role="img"' in html and 'href="/t/northwind/reports/ledger.csv?date_from=' in html


def test_the_chart_and_the_table_show_the_same_figures(client_as, ledger_story):
    start = ledger_story.first_day
    end = start + timedelta(days=9)
    page = client_as(Role.FINANCE).get(url(ledger_story.team), {"date_from": start, "date_to": end})
    html = page.content.decode()
    plotted = [int(v) for v in re.findall(r'<circle [^>]*data-value="(-?\d+)"', html)]
    table = re.search(r'<table class="table" id="daily-balances">(.*?)</table>', html, re.S).group(1)
    listed = [int(v.replace(",", "")) for v in re.findall(r'<td class="num">([\d,]+)</td>', table)]
    expected = [closing_balance(ledger_story.team, start + timedelta(days=n)) for n in range(10)]
    assert plotted == listed == expected
    assert f"?date_from={start.isoformat()}&amp;date_to={end.isoformat()}" in html  # exports keep the filters
    assert f"?until={end.isoformat()}" in html


def test_bad_dates_are_explained_and_the_default_period_is_shown(client_as, ledger_story):
    page = client_as(Role.FINANCE).get(url(ledger_story.team), {"date_from": "2026-02-30"})
    assert page.status_code == 422
    assert "Enter a date like 2026-12-31" in page.content.decode()
    assert len(re.findall(r"<circle ", page.content.decode())) == 90


@pytest.mark.parametrize("role", CANNOT_READ)
@pytest.mark.parametrize("name", REPORT_URLS)
def test_producers_and_viewers_may_not_read_or_export(client_as, demo, role, name):
    assert client_as(role).get(url(demo, name)).status_code == 403


@pytest.mark.parametrize("role", CAN_READ)
@pytest.mark.parametrize("name", REPORT_URLS)
def test_owner_finance_and_leads_may_read_and_export(client_as, demo, role, name):
    assert client_as(role).get(url(demo, name)).status_code == 200


@pytest.mark.parametrize("name", REPORT_URLS)
def test_another_teams_reports_are_not_found(client_as, demo, other_team, name):
    assert client_as(Role.OWNER).get(url(other_team, name)).status_code == 404


@pytest.mark.parametrize("name", REPORT_URLS)
def test_anonymous_visitors_are_sent_to_sign_in(client, demo, name):
    response = client.get(url(demo, name))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_journal_download_is_the_teams_journal(client_as, ledger_story):
    response = client_as(Role.LEAD).get(url(ledger_story.team, "ledger:journal"))
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert 'filename="northwind-journal.beancount"' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    assert "open Assets:Teams:Northwind:Available KCR" in text
    assert "Blue-Harbor" not in text and "balance Assets:Teams:Northwind:Available  6500 KCR" in text
    until = ledger_story.first_day + timedelta(days=1)
    response = client_as(Role.LEAD).get(url(ledger_story.team, "ledger:journal"), {"until": until})
    text = b"".join(response.streaming_content).decode()
    assert f"{until + timedelta(days=1)} balance Assets:Teams:Northwind:Held  600 KCR" in text
    assert (
        client_as(Role.LEAD).get(url(ledger_story.team, "ledger:journal"), {"until": "May"}).status_code
        == 422
    )


def test_by_default_the_page_shows_the_last_ninety_days_in_its_fields(client_as, ledger_story):
    html = client_as(Role.FINANCE).get(url(ledger_story.team)).content.decode()
    today = timezone.localdate()
    assert f'name="date_from" value="{today - timedelta(days=89)}"' in html
    assert f'name="date_to" value="{today}"' in html
    assert len(re.findall(r"<circle ", html)) == 90
