import io
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Max, Min

from keter.accounts.models import Team
from ledger.checks import ledger_check
from ledger.history import HistoryRefused, generate_history
from ledger.models import Account, Entry, Hold, Lot, Transaction
from ledger.services import (
    ledger_capture,
    ledger_grant_plan_credits,
    ledger_hold,
    plan_grant_key,
    team_period,
)
from ledger.signals import history_generated, history_starting

END = datetime(2026, 6, 15, 17, 30, tzinfo=UTC)


def story(team: Team) -> list[tuple]:
    return list(
        Entry.objects.filter(transaction__team=team)
        .order_by("id")
        .values_list("transaction__kind", "account__kind", "credits")
    )


def test_a_generated_year_passes_every_ledger_check_with_every_kind_of_transaction(db):
    result = generate_history(entries=4_000, team_slugs=["history-a", "history-b"], seed=7, end=END)
    report = ledger_check()
    assert report.ok, report.violations[:10]
    assert 4_000 <= Entry.objects.count() == result.entries < 4_010  # a take launch is a few postings
    assert Transaction.objects.count() == result.transactions
    assert set(Transaction.objects.values_list("kind", flat=True)) == set(Transaction.Kind.values)
    assert Lot.objects.filter(status=Lot.Status.EXPIRED).exists()
    assert Hold.objects.filter(status=Hold.Status.PENDING).exists()  # work in progress at the end
    for team in result.teams:
        span = Transaction.objects.filter(team=team).aggregate(
            first=Min("created_at"), last=Max("created_at")
        )
        assert span["first"] - (END - timedelta(days=365)) < timedelta(days=1)
        assert END - span["last"] < timedelta(days=14)
        assert abs(Entry.objects.filter(transaction__team=team).count() - 2_000) < 50  # shared evenly
        # One plan grant a billing period, under the key the periodic grant uses.
        grants = Transaction.objects.filter(team=team, kind="grant")
        assert 12 <= grants.count() <= 13
        assert grants.filter(key=plan_grant_key(team, team_period(team, span["last"]))).exists()


def test_the_services_carry_on_from_a_generated_history(db):
    (team,) = generate_history(entries=800, team_slugs=["history-c"], seed=2).teams
    assert ledger_grant_plan_credits(teams=[team]) == 0  # this period's grant is in the history already
    before = Account.objects.get(team=team, kind="available").balance
    hold = ledger_hold(team=team, credits=100, key="after:hold", reference="project:after")
    ledger_capture(hold=hold, credits=60, key="after:capture", reference="job:after")
    assert Account.objects.get(team=team, kind="available").balance == before - 100
    report = ledger_check()
    assert report.ok, report.violations[:10]


def test_the_same_seed_tells_the_same_story(db):
    (first,) = generate_history(entries=600, team_slugs=["same-a"], seed=11, end=END).teams
    (second,) = generate_history(entries=600, team_slugs=["same-b"], seed=11, end=END).teams
    (third,) = generate_history(entries=600, team_slugs=["other-c"], seed=12, end=END).teams
    assert story(first) == story(second) != story(third)


def test_the_command_fills_new_teams_tells_listeners_and_refuses_teams_with_history(db):
    heard = []

    def listener(sender, result, options, **kwargs):
        heard.append((result.entries, options["seed"]))

    history_generated.connect(listener)
    try:
        out = io.StringIO()
        call_command(
            "generate_history", "--entries", "300", "--team-slug", "cmd-team", "--seed", "5", stdout=out
        )
    finally:
        history_generated.disconnect(listener)
    assert "Generated 30" in out.getvalue() and "cmd-team" in out.getvalue()
    assert heard and heard[0][1] == 5 and heard[0][0] >= 300
    assert Team.objects.get(slug="cmd-team").plan.slug == "pro"
    with pytest.raises(CommandError, match="already has ledger history"):
        call_command("generate_history", "--entries", "300", "--team-slug", "cmd-team", stdout=io.StringIO())


def test_it_refuses_to_generate_nothing(db):
    with pytest.raises(HistoryRefused):
        generate_history(entries=0, team_slugs=["nothing"])


def test_alone_the_ledger_labels_its_references_and_still_passes_every_check(db):
    """Without a listener to number them (no planner), projects and jobs get the ledger's own labels,
    which no later service key can collide with."""
    with mock.patch.object(history_starting, "receivers", []):
        (team,) = generate_history(entries=1_500, team_slugs=["alone"], seed=3, end=END).teams
    report = ledger_check()
    assert report.ok, report.violations[:10]
    jobs = Hold.objects.filter(team=team, key__startswith="hold:job:")
    assert jobs.exists() and all(h.reference == f"job:h{team.pk}-" + h.key.rsplit("-", 1)[1] for h in jobs)
    keys = set(Transaction.objects.filter(team=team).values_list("key", flat=True))
    assert any(key.startswith(f"capture:job:h{team.pk}-") for key in keys)
    assert any(key.startswith(f"return:job:h{team.pk}-") for key in keys)
