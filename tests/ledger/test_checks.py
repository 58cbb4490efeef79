import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger.checks import ledger_check
from ledger.models import Account, Entry, Hold, Lot, Transaction
from ledger.services import ledger_capture


# PostgreSQL refuses to store these corruptions at all (test_db_guards.py); SQLite trusts the services.
@pytest.fixture
def guards_off(db):
    """PostgreSQL refuses to corrupt entries (test_db_guards.py); to prove the checker still sees such
    damage, its guard triggers are switched off inside this test's transaction, which is rolled back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the checks already queued, then alter
            cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def busy_ledger(team, grant, hold, new_key):
    grant(1_000)
    held = hold(400)
    ledger_capture(hold=held, credits=100, key=new_key(), reference="job:1")
    return held


def violations() -> str:
    report = ledger_check()
    assert not report.ok
    return "\n".join(report.violations)


def test_a_consistent_ledger_passes_every_check(busy_ledger):
    report = ledger_check()
    assert report.ok, report.violations
    assert report.counts["transactions"] == 3


def test_the_command_prints_a_report_and_exits_cleanly(busy_ledger):
    out = io.StringIO()
    call_command("ledger_check", stdout=out)
    assert "OK: every invariant holds" in out.getvalue()


def test_the_command_fails_on_any_violation(busy_ledger, team):
    Account.objects.filter(team=team, kind="available").update(balance=10**6)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_check", stdout=out)
    assert "cached balance 1000000 but its entries sum to 600" in out.getvalue()


def test_it_catches_a_cached_balance_that_drifted_from_the_entries(busy_ledger, team):
    Account.objects.filter(team=team, kind="held").update(balance=0)
    found = violations()
    assert "cached balance 0 but its entries sum to 300" in found
    assert "0 held but pending holds keep 300" in found


def test_it_catches_a_lot_that_disagrees_with_the_holds(busy_ledger):
    Lot.objects.update(reserved=0)
    found = violations()
    assert "reserved 0 but holds reserve 300" in found


def test_it_catches_a_hold_marked_resolved_that_still_keeps_credits(busy_ledger):
    Hold.objects.update(status="posted")
    assert "is posted but still keeps 300 credits" in violations()


def test_it_catches_a_transaction_that_no_operation_posted(busy_ledger, team):
    txn = Transaction.objects.create(team=team, kind="adjust", key="by-hand")
    available = Account.objects.get(team=team, kind="available")
    Entry.objects.bulk_create(
        [
            Entry(transaction=txn, account=available, credits=5, balance_after=available.balance + 5),
            Entry(transaction=txn, account=Account.objects.get(kind="adjustments"), credits=-5),
        ]
    )
    Account.objects.filter(pk=available.pk).update(balance=available.balance + 5)
    found = violations()
    assert f"transaction #{txn.pk} was posted by no recorded operation" in found
    assert "available but its lots can give" in found


def test_it_catches_an_unbalanced_transaction(busy_ledger, guards_off):
    entry = Entry.objects.filter(account__kind="usage").get()
    Entry.objects.filter(pk=entry.pk).update(credits=99)
    found = violations()
    assert f"transaction #{entry.transaction_id}: 2 entries sum to -1, not 0" in found
    assert "the whole ledger sums to -1" in found


def test_it_catches_a_broken_balance_after_chain(busy_ledger, guards_off):
    entry = Entry.objects.filter(account__kind="available").order_by("id").first()
    Entry.objects.filter(pk=entry.pk).update(balance_after=999)
    assert f"entry #{entry.pk}: balance after 999, expected 1000 (chain broken)" in violations()


def test_an_empty_ledger_is_consistent(db):
    assert ledger_check().ok
