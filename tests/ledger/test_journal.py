import io
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from django.core.management import CommandError, call_command
from django.utils import timezone

from ledger.history import generate_history
from ledger.journal import beancount_string
from ledger.models import Account, Entry, Transaction

from .conftest import AWKWARD_MEMO, INJECTED_REFERENCE

BEAN_CHECK = Path(sys.executable).with_name("bean-check")
NAMES = {"available": "Available", "held": "Held"}


def export(tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "ledger.beancount"
    call_command("export_journal", "--format", "beancount", *args, "--output", str(path))
    return path


def bean_check(path: Path) -> None:
    checked = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def load(path: Path) -> list:
    entries, errors, _ = loader.load_file(str(path))
    assert not errors, errors
    return entries


def totals(entries: list) -> dict[str, int]:
    """Each account's balance, summed from the journal's postings."""
    sums = defaultdict(int)
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                assert posting.units.currency == "KCR"
                sums[posting.account] += int(posting.units.number)
    return dict(sums)


def of(entries: list, kind: type) -> list:
    return [entry for entry in entries if isinstance(entry, kind)]


def test_a_teams_journal_passes_bean_check_and_agrees_with_the_ledger(ledger_story, tmp_path):
    team = ledger_story.team
    path = export(tmp_path, "--team", team.slug)
    bean_check(path)
    entries = load(path)
    sums = totals(entries)
    for account in Account.objects.filter(team=team):
        assert sums[f"Assets:Teams:Northwind:{NAMES[account.kind]}"] == account.balance
    assert sums["Assets:Teams:Northwind:Available"] == 6_500 and sums["Assets:Teams:Northwind:Held"] == 0
    # The system legs of the team's transactions: 600 captured less 50 refunded; what expired or came
    # back from the expired lot; what was issued.
    assert sums["Expenses:Usage"] == 550
    assert sums["Expenses:Breakage"] == 650 + 550 + 300
    assert sums["Income:Issuance:Grants"] == -2_250 and sums["Income:Issuance:Purchases"] == -6_000
    assert sums["Equity:Adjustments"] == -300
    assert not any("Blue-Harbor" in name for name in sums)  # another team's accounts stay out

    transactions = of(entries, data.Transaction)
    ledger_ids = sorted(Transaction.objects.filter(team=team).values_list("id", flat=True))
    assert sorted(int(t.meta["ledger-transaction"]) for t in transactions) == ledger_ids
    for txn in transactions:
        stored = Transaction.objects.get(pk=int(txn.meta["ledger-transaction"]))
        assert txn.meta["idempotency-key"] == stored.key and txn.meta["kind"] == stored.kind
        assert txn.date == timezone.localtime(stored.created_at).date()
        assert stored.get_kind_display() in txn.narration
        legs = sorted(int(p.units.number) for p in txn.postings)
        assert legs == sorted(stored.entries.values_list("credits", flat=True))

    opened = {entry.account for entry in of(entries, data.Open)}
    assert opened == set(sums)
    assertions = {(b.account, int(b.amount.number), b.date) for b in of(entries, data.Balance)}
    last_day = ledger_story.first_day + timedelta(days=9)
    assert assertions == {
        ("Assets:Teams:Northwind:Available", 6_500, last_day + timedelta(days=1)),
        ("Assets:Teams:Northwind:Held", 0, last_day + timedelta(days=1)),
    }


def test_text_survives_the_trip_through_beancount_strings(ledger_story, tmp_path):
    entries = load(export(tmp_path, "--team", ledger_story.team.slug))
    memos = {t.meta.get("memo") for t in of(entries, data.Transaction)}
    references = {t.meta.get("reference") for t in of(entries, data.Transaction)}
    assert AWKWARD_MEMO in memos  # quotes, a backslash, a newline and accents, exactly
    assert INJECTED_REFERENCE in references
    actors = {t.meta.get("actor") for t in of(entries, data.Transaction)}
    assert "finance@demo.keter" in actors
    assert beancount_string('a "b" \\ c\nd\x07') == '"a \\"b\\" \\\\ c\\nd "'


def test_the_whole_ledgers_journal_has_every_team_and_balances(ledger_story, tmp_path):
    out = io.StringIO()
    call_command("export_journal", "--format", "beancount", stdout=out)
    path = tmp_path / "all.beancount"
    path.write_text(out.getvalue())
    bean_check(path)
    sums = totals(load(path))
    assert sums["Assets:Teams:Blue-Harbor:Available"] == 625
    assert sums["Income:Issuance:Grants"] == -2_250 - 625
    assert sum(sums.values()) == 0


def test_a_journal_up_to_a_day_asserts_that_days_closing_balances(ledger_story, tmp_path):
    until = ledger_story.first_day + timedelta(days=3)
    path = export(tmp_path, "--team", ledger_story.team.slug, "--until", until.isoformat())
    bean_check(path)
    entries = load(path)
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=timezone.get_current_timezone())
    for account in Account.objects.filter(team=ledger_story.team):
        credits = Entry.objects.filter(account=account, transaction__created_at__lt=end)
        expected = sum(credits.values_list("credits", flat=True))
        (assertion,) = [b for b in of(entries, data.Balance) if b.account.endswith(NAMES[account.kind])]
        assert int(assertion.amount.number) == expected and assertion.date == until + timedelta(days=1)
    assert max(t.date for t in of(entries, data.Transaction)) == until


def test_a_generated_year_of_history_exports_to_a_journal_that_balances(db, tmp_path):
    generate_history(entries=1_500, team_slugs=["journal-year"], seed=3)
    path = export(tmp_path, "--team", "journal-year")
    bean_check(path)
    sums = totals(load(path))
    for account in Account.objects.filter(team__slug="journal-year"):
        assert sums[f"Assets:Teams:Journal-Year:{NAMES[account.kind]}"] == account.balance


def test_an_empty_ledger_gives_an_empty_journal_that_still_checks(db, tmp_path):
    path = export(tmp_path)
    bean_check(path)
    assert of(load(path), data.Transaction) == []


@pytest.mark.parametrize(
    "args, message", [(["--team", "nobody"], "No team"), (["--until", "31/12/2026"], "not a date")]
)
def test_the_command_refuses_an_unknown_team_or_a_malformed_date(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_journal", *args, stdout=io.StringIO())
