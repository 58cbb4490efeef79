import pytest

from ledger.checks import ledger_check
from ledger.errors import HoldAlreadyResolved, IdempotencyConflict, InsufficientCredits
from ledger.models import Entry, Hold, Lot, Operation, Transaction
from ledger.services import (
    ledger_capture,
    ledger_close_hold,
    ledger_grant,
    ledger_hold,
    ledger_refund,
    ledger_release,
    ledger_top_up,
    ledger_void_hold,
)


def test_a_retried_grant_returns_the_first_lot_and_grants_nothing_more(team, balance):
    first = ledger_grant(team=team, credits=500, key="grant:promo:1", memo="Welcome")
    again = ledger_grant(team=team, credits=500, key="grant:promo:1", memo="Welcome")
    assert again.pk == first.pk
    assert balance() == (500, 0)
    assert Transaction.objects.count() == 1


def test_the_same_key_with_different_input_is_a_conflict(team, balance):
    ledger_grant(team=team, credits=500, key="grant:promo:1")
    with pytest.raises(IdempotencyConflict) as conflict:
        ledger_grant(team=team, credits=501, key="grant:promo:1")
    assert conflict.value.key == "grant:promo:1"
    assert balance() == (500, 0)


def test_the_same_key_for_another_operation_or_team_is_a_conflict(team, other_team, grant):
    grant(1_000)
    ledger_hold(team=team, credits=100, key="shared", reference="approval:1")
    with pytest.raises(IdempotencyConflict):
        ledger_top_up(team=team, credits=1_000, key="shared")
    with pytest.raises(IdempotencyConflict):
        ledger_hold(team=other_team, credits=100, key="shared", reference="approval:1")


def test_a_retried_capture_returns_the_first_transaction_and_captures_once(team, grant, hold, balance):
    grant(1_000)
    held = hold(400)
    first = ledger_capture(hold=held, credits=100, key="capture:job:123", reference="job:123")
    again = ledger_capture(hold=held, credits=100, key="capture:job:123", reference="job:123")
    assert again.pk == first.pk
    assert held.captured == 100
    assert balance() == (600, 300)
    with pytest.raises(IdempotencyConflict):
        ledger_capture(hold=held, credits=90, key="capture:job:123", reference="job:123")
    with pytest.raises(IdempotencyConflict):
        ledger_capture(hold=held, credits=100, key="capture:job:123", reference="job:124")


def test_a_retried_hold_returns_the_hold_as_it_is_now(team, grant):
    grant(1_000)
    held = ledger_hold(team=team, credits=400, key="hold:approval:42", reference="approval:42")
    ledger_close_hold(hold=held, key="close:approval:42")
    again = ledger_hold(team=team, credits=400, key="hold:approval:42", reference="approval:42")
    assert (again.pk, again.status) == (held.pk, "posted")
    assert Hold.objects.count() == 1


def test_a_refused_operation_stays_refused_for_its_key(team, grant, balance):
    grant(100)
    with pytest.raises(InsufficientCredits):
        ledger_hold(team=team, credits=300, key="hold:approval:9", reference="approval:9")
    grant(1_000)  # now there would be enough...
    with pytest.raises(InsufficientCredits) as again:
        ledger_hold(team=team, credits=300, key="hold:approval:9", reference="approval:9")
    assert (again.value.available, again.value.needed) == (100, 300)  # ...but the answer was given
    assert not Hold.objects.exists()
    refusal = Operation.objects.get(key="hold:approval:9")
    assert (refusal.outcome, refusal.error_code) == ("refused", "insufficient_credits")
    assert balance() == (1_100, 0)


def test_a_second_resolution_is_refused_and_its_retry_is_refused_the_same_way(team, grant, hold):
    grant(1_000)
    held = hold(100)
    ledger_close_hold(hold=held, key="close:1")
    assert ledger_close_hold(hold=held, key="close:1").status == "posted"  # the retry: same outcome
    for _ in range(2):
        with pytest.raises(HoldAlreadyResolved):
            ledger_void_hold(hold=held, key="void:1")
    assert Operation.objects.filter(key="void:1", outcome="refused").count() == 1


def test_retries_of_every_hold_operation_change_nothing(team, grant, hold, balance):
    grant(1_000)
    held = hold(500)

    def run_all():
        ledger_capture(hold=held, credits=100, key="k:capture", reference="job:1")
        ledger_release(hold=held, credits=50, key="k:release", reference="job:2")
        ledger_refund(hold=held, credits=20, key="k:refund", reference="job:1")
        ledger_close_hold(hold=held, key="k:close")

    run_all()
    counts = (Transaction.objects.count(), Entry.objects.count(), Operation.objects.count(), balance())
    run_all()
    assert (
        Transaction.objects.count(),
        Entry.objects.count(),
        Operation.objects.count(),
        balance(),
    ) == counts
    assert ledger_check().ok


def test_a_key_is_a_non_empty_string(team):
    with pytest.raises(ValueError):
        ledger_grant(team=team, credits=5, key="")
    with pytest.raises(ValueError):
        ledger_grant(team=team, credits=5, key="x" * 201)
    assert not Lot.objects.exists()


def test_a_top_up_retry_with_the_same_instant_in_another_time_zone_is_the_same_request(team, later):
    from zoneinfo import ZoneInfo

    moment = later(30)
    first = ledger_top_up(team=team, credits=1_000, key="topup:1", expires_at=moment)
    again = ledger_top_up(
        team=team, credits=1_000, key="topup:1", expires_at=moment.astimezone(ZoneInfo("Asia/Tokyo"))
    )
    assert again.pk == first.pk
