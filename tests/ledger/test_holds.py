import pytest

from ledger.checks import ledger_check
from ledger.errors import HoldAlreadyResolved, HoldExceeded, InsufficientCredits, RefundExceedsCaptured
from ledger.models import Entry, Hold, Lot, Operation, Transaction
from ledger.services import (
    ledger_capture,
    ledger_close_hold,
    ledger_expire_holds,
    ledger_expire_lots,
    ledger_hold,
    ledger_hold_extend,
    ledger_refund,
    ledger_release,
    ledger_void_hold,
)


@pytest.fixture
def funded(grant):
    return grant(1_000)


def test_it_moves_held_credits_from_available_to_held(team, funded, hold, balance):
    held = hold(400, reference="approval:42")
    assert (held.status, held.credits, held.reference) == ("pending", 400, "approval:42")
    assert balance() == (600, 400)
    funded.refresh_from_db()
    assert (funded.remaining, funded.reserved) == (1_000, 400)


def test_it_refuses_a_hold_beyond_the_available_balance(team, funded, hold, balance):
    with pytest.raises(InsufficientCredits) as refused:
        hold(1_001)
    assert (refused.value.available, refused.value.needed) == (1_000, 1_001)
    assert "1,000 available, 1,001 needed" in refused.value.message
    assert balance() == (1_000, 0)
    assert not Hold.objects.exists()


def test_it_captures_in_parts_while_pending_and_never_beyond_the_hold(team, funded, hold, new_key, balance):
    held = hold(400)
    first = ledger_capture(hold=held, credits=150, key=new_key(), reference="job:1")
    ledger_capture(hold=held, credits=200, key=new_key(), reference="job:2")
    assert (held.captured, held.open_credits) == (350, 50)  # the caller's object is kept up to date
    with pytest.raises(HoldExceeded) as refused:
        ledger_capture(hold=held, credits=51, key=new_key(), reference="job:3")
    assert (refused.value.open_credits, refused.value.requested) == (50, 51)
    assert balance() == (600, 50)
    assert first.reference == "job:1"
    legs = dict(Entry.objects.filter(transaction=first).values_list("account__kind", "credits"))
    assert legs == {"held": -150, "usage": 150}
    assert ledger_check().ok


def test_it_releases_part_of_a_pending_hold_back_to_available(team, funded, hold, new_key, balance):
    held = hold(400)
    txn = ledger_release(hold=held, credits=100, key=new_key(), reference="job:9")
    assert (txn.kind, txn.reference) == ("release", "job:9")
    assert (held.status, held.released, held.open_credits) == ("pending", 100, 300)
    assert balance() == (700, 300)


def test_closing_posts_the_hold_and_releases_what_was_not_captured(team, funded, hold, new_key, balance):
    held = hold(400)
    ledger_capture(hold=held, credits=150, key=new_key(), reference="job:1")
    closed = ledger_close_hold(hold=held, key=new_key())
    assert (closed.status, closed.captured, closed.released, closed.open_credits) == ("posted", 150, 250, 0)
    assert closed.resolved_at is not None
    assert balance() == (850, 0)
    funded.refresh_from_db()
    assert (funded.remaining, funded.reserved) == (850, 0)


def test_voiding_releases_everything_not_captured(team, funded, hold, new_key, balance):
    held = hold(400)
    ledger_capture(hold=held, credits=100, key=new_key(), reference="job:1")
    voided = ledger_void_hold(hold=held, key=new_key())
    assert (voided.status, voided.captured, voided.released) == ("voided", 100, 300)
    assert balance() == (900, 0)


def test_a_fully_captured_hold_closes_without_a_release(team, funded, hold, new_key):
    held = hold(400)
    ledger_capture(hold=held, credits=400, key=new_key(), reference="job:1")
    ledger_close_hold(hold=held, key=new_key())
    assert not Transaction.objects.filter(kind="hold_close").exists()  # nothing to move, no empty transaction
    assert ledger_check().ok


@pytest.mark.parametrize("second", ["close", "void", "capture", "release", "extend"])
def test_a_hold_resolves_once_and_a_second_resolution_is_refused(
    team, funded, hold, new_key, balance, second
):
    held = hold(400)
    ledger_close_hold(hold=held, key=new_key())
    attempts = {
        "close": lambda: ledger_close_hold(hold=held, key=new_key()),
        "void": lambda: ledger_void_hold(hold=held, key=new_key()),
        "capture": lambda: ledger_capture(hold=held, credits=1, key=new_key(), reference="job:late"),
        "release": lambda: ledger_release(hold=held, credits=1, key=new_key()),
        "extend": lambda: ledger_hold_extend(hold=held, credits=1, key=new_key()),
    }
    with pytest.raises(HoldAlreadyResolved) as refused:
        attempts[second]()
    assert refused.value.status == "posted"
    assert balance() == (1_000, 0)
    assert Transaction.objects.filter(hold=held).count() == 2  # the hold and its close, nothing more


def test_a_stale_hold_object_cannot_resolve_twice(team, funded, hold, new_key):
    held = hold(400)
    stale = Hold.objects.get(pk=held.pk)
    ledger_void_hold(hold=held, key=new_key())
    with pytest.raises(HoldAlreadyResolved):
        ledger_close_hold(hold=stale, key=new_key())  # it still says pending: the ledger reads afresh
    assert stale.status == "voided"


def test_extending_a_hold_draws_more_from_the_lots(team, grant, hold, new_key, balance, later):
    first = grant(300, expires_at=later(5))
    second = grant(1_000)
    held = hold(200)
    ledger_hold_extend(hold=held, credits=500, key=new_key())
    assert (held.credits, held.open_credits) == (700, 700)
    assert dict(held.allocations.values_list("lot_id", "reserved")) == {first.pk: 300, second.pk: 400}
    with pytest.raises(InsufficientCredits):
        ledger_hold_extend(hold=held, credits=601, key=new_key())
    assert balance() == (600, 700)
    assert ledger_check().ok


def test_a_capture_spends_the_soonest_expiring_credits_and_a_release_keeps_them(
    team, grant, hold, new_key, later
):
    soon = grant(100, expires_at=later(2))
    never = grant(1_000)
    held = hold(600)
    ledger_release(hold=held, credits=200, key=new_key())  # gives back from the lot that burns last
    ledger_capture(hold=held, credits=150, key=new_key(), reference="job:1")  # spends the soonest first
    soon.refresh_from_db()
    never.refresh_from_db()
    assert (soon.remaining, soon.reserved) == (0, 0)
    assert (never.remaining, never.reserved) == (950, 250)


def test_it_refunds_captured_credits_but_never_more_than_captured(team, funded, hold, new_key, balance):
    held = hold(400)
    ledger_capture(hold=held, credits=300, key=new_key(), reference="job:1")
    ledger_close_hold(hold=held, key=new_key())
    refund = ledger_refund(hold=held, credits=200, key=new_key(), reference="job:1")
    assert (refund.kind, refund.reference) == ("refund", "job:1")
    assert dict(Entry.objects.filter(transaction=refund).values_list("account__kind", "credits")) == {
        "usage": -200,
        "available": 200,
    }
    with pytest.raises(RefundExceedsCaptured) as refused:
        ledger_refund(hold=held, credits=101, key=new_key(), reference="job:1")
    assert (refused.value.refundable, refused.value.requested) == (100, 101)
    assert held.refunded == 200
    assert balance() == (900, 0)
    assert ledger_check().ok


def test_a_refund_to_a_lot_that_expired_meanwhile_goes_to_breakage(
    team, grant, hold, new_key, later, balance
):
    grant(500, expires_at=later(3))
    held = hold(300)
    ledger_capture(hold=held, credits=300, key=new_key(), reference="job:1")
    ledger_expire_lots(now=later(4))
    ledger_refund(hold=held, credits=100, key=new_key(), reference="job:1")
    assert balance() == (0, 0)
    assert Entry.objects.filter(account__kind="breakage").values_list("credits", flat=True).count() == 2
    assert ledger_check().ok


def test_it_times_out_pending_holds_past_their_expiry(team, funded, hold, new_key, later, balance):
    due = hold(300, expires_at=later(1))
    hold(200, expires_at=later(5))
    hold(100)  # no expiry: stays until resolved
    ledger_capture(hold=due, credits=50, key=new_key(), reference="job:1")
    assert ledger_expire_holds(now=later(2)) == 1
    due.refresh_from_db()
    assert (due.status, due.captured, due.released) == ("expired", 50, 250)
    assert balance() == (650, 300)
    assert ledger_expire_holds(now=later(2)) == 0
    with pytest.raises(HoldAlreadyResolved):
        ledger_close_hold(hold=due, key=new_key())


def test_a_hold_timed_out_after_it_was_closed_stays_closed(team, funded, hold, new_key, later):
    held = hold(300, expires_at=later(1))
    ledger_close_hold(hold=held, key=new_key())
    assert ledger_expire_holds(now=later(2)) == 0
    held.refresh_from_db()
    assert held.status == "posted"


def test_every_capture_and_return_carries_its_reference(team, funded):
    held = ledger_hold(team=team, credits=400, key="hold:approval:7", reference="approval:7")
    ledger_capture(hold=held, credits=100, key="capture:job:1", reference="job:1")
    ledger_release(hold=held, credits=50, key="release:job:2", reference="job:2")
    ledger_refund(hold=held, credits=30, key="refund:job:1", reference="job:1")
    ledger_close_hold(hold=held, key="close:approval:7")
    rows = list(Transaction.objects.filter(hold=held).order_by("id").values_list("kind", "reference", "key"))
    assert rows == [
        ("hold", "approval:7", "hold:approval:7"),
        ("capture", "job:1", "capture:job:1"),
        ("release", "job:2", "release:job:2"),
        ("refund", "job:1", "refund:job:1"),
        ("hold_close", "approval:7", "close:approval:7"),
    ]
    assert Operation.objects.filter(hold=held).count() == 5


def test_no_lot_ever_goes_negative_or_below_what_it_reserves(team, grant, hold, new_key):
    grant(100)
    held = hold(100)
    ledger_capture(hold=held, credits=100, key=new_key(), reference="job:1")
    lot = Lot.objects.get()
    assert (lot.remaining, lot.reserved) == (0, 0)
    with pytest.raises(InsufficientCredits):
        ledger_hold(team=team, credits=1, key=new_key(), reference="x")
