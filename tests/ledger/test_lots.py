from datetime import timedelta

import pytest
from django.utils import timezone

from keter.accounts.roles import Role
from ledger.checks import ledger_check
from ledger.errors import InsufficientCredits, InvalidCredits, InvalidInput, TopUpTooSmall
from ledger.models import Account, Entry, Lot, Transaction
from ledger.selectors import active_lots
from ledger.services import (
    ledger_adjust,
    ledger_capture,
    ledger_expire_lots,
    ledger_grant,
    ledger_release,
    ledger_top_up,
)


def test_it_grants_credits_as_a_promotional_lot_posted_from_issuance(team, new_key, balance):
    lot = ledger_grant(team=team, credits=2_250, key=new_key(), reference="plan:pro:2026-11", memo="Pro plan")
    assert (lot.category, lot.credits, lot.remaining, lot.reserved) == ("promotional", 2_250, 2_250, 0)
    assert balance() == (2_250, 0)
    txn = Transaction.objects.get(lot=lot)
    assert txn.kind == "grant" and txn.reference == "plan:pro:2026-11"
    legs = {e.account.kind: (e.credits, e.balance_after) for e in txn.entries.select_related("account")}
    assert legs == {"issuance_grants": (-2_250, None), "available": (2_250, 2_250)}
    assert ledger_check().ok


def test_it_records_a_top_up_as_a_paid_lot_that_never_expires(team, new_key, balance, member, demo):
    actor = member(Role.FINANCE).user
    lot = ledger_top_up(team=team, credits=5_000, key=new_key(), reference="invoice 7", actor=actor)
    assert (lot.category, lot.expires_at, lot.actor) == ("paid", None, actor)
    assert Entry.objects.filter(
        transaction__lot=lot, account__kind="issuance_purchases", credits=-5_000
    ).exists()
    assert balance() == (5_000, 0)


def test_it_sells_top_ups_in_packs_of_at_least_a_thousand_credits(team, new_key):
    with pytest.raises(TopUpTooSmall) as refused:
        ledger_top_up(team=team, credits=999, key=new_key())
    assert refused.value.field == "credits"
    assert "at least 1,000" in refused.value.message
    assert not Lot.objects.exists()


@pytest.mark.parametrize("credits", [0, -5, 10**12, 2.5, "100", True, None])
def test_it_refuses_credits_that_are_not_a_sensible_whole_number(team, new_key, credits):
    with pytest.raises(InvalidCredits) as refused:
        ledger_grant(team=team, credits=credits, key=new_key())
    assert refused.value.field == "credits"
    assert not Transaction.objects.exists()


def test_it_refuses_an_expiry_that_comes_before_the_credits_are_usable(team, new_key, later):
    with pytest.raises(InvalidInput) as refused:
        ledger_grant(team=team, credits=10, key=new_key(), expires_at=later(-1))
    assert refused.value.field == "expires_at"
    with pytest.raises(InvalidInput):
        ledger_grant(team=team, credits=10, key=new_key(), effective_at=later(5), expires_at=later(4))


def test_it_refuses_a_naive_date(team, new_key):
    with pytest.raises(InvalidInput):
        ledger_grant(team=team, credits=10, key=new_key(), expires_at=timezone.now().replace(tzinfo=None))


def test_it_burns_by_priority_then_soonest_expiry_then_promotional_before_paid_then_oldest(
    team, grant, hold, new_key, later
):
    soon = later(5)
    paid_old = ledger_top_up(team=team, credits=1_000, key=new_key())
    promo_never = grant(100)
    paid_soon = grant(100, expires_at=soon, category="paid")
    promo_soon = grant(100, expires_at=soon)
    promo_sooner = grant(100, expires_at=later(2))
    urgent = grant(100, priority=-1)
    paid_new = ledger_top_up(team=team, credits=1_000, key=new_key())
    order = [urgent, promo_sooner, promo_soon, paid_soon, promo_never, paid_old, paid_new]
    assert [lot.pk for lot in active_lots(team)] == [lot.pk for lot in order]
    held = hold(450)  # everything before promo_never, and half of it
    drawn = {a.lot_id: a.reserved for a in held.allocations.all()}
    assert drawn == {
        urgent.pk: 100,
        promo_sooner.pk: 100,
        promo_soon.pk: 100,
        paid_soon.pk: 100,
        promo_never.pk: 50,
    }


def test_it_takes_nothing_from_a_lot_that_is_not_effective_yet(team, grant, hold, later, balance):
    grant(500, effective_at=later(3))
    grant(100)
    assert balance() == (600, 0)  # it counts as the team's, but cannot be spent before its date
    with pytest.raises(InsufficientCredits) as refused:
        hold(200)
    assert (refused.value.available, refused.value.needed) == (100, 200)


def test_it_takes_nothing_from_a_lot_past_its_expiry_even_before_the_sweep(team, grant, hold, later, balance):
    lot = grant(100, expires_at=later(1))
    Lot.objects.filter(pk=lot.pk).update(expires_at=timezone.now())  # its moment has come
    with pytest.raises(InsufficientCredits) as refused:
        hold(50)
    assert refused.value.available == 0


def test_it_expires_a_lot_by_moving_its_unreserved_rest_to_breakage(team, grant, hold, later, balance):
    lot = grant(1_000, expires_at=later(10))
    grant(300)
    hold(1_100)  # 1,000 from the expiring lot (it burns first), 100 from the other
    assert ledger_expire_lots(now=later(9)) == 0
    assert ledger_expire_lots(now=later(11)) == 1
    lot.refresh_from_db()
    assert (lot.status, lot.remaining, lot.reserved) == ("expired", 1_000, 1_000)  # the hold keeps its part
    assert balance() == (200, 1_100)
    assert ledger_expire_lots(now=later(12)) == 0  # once
    assert ledger_check().ok


def test_it_breaks_the_unreserved_rest_of_an_expired_lot(team, grant, hold, later, balance):
    grant(1_000, expires_at=later(10))
    hold(400)
    ledger_expire_lots(now=later(11))
    assert balance() == (0, 400)
    breakage = Entry.objects.get(account__kind="breakage")
    assert breakage.credits == 600 and breakage.transaction.kind == "lot_expire"


def test_what_a_hold_gives_back_to_an_expired_lot_goes_to_breakage(
    team, grant, hold, later, balance, new_key
):
    grant(1_000, expires_at=later(10))
    held = hold(400)
    ledger_expire_lots(now=later(11))
    ledger_capture(hold=held, credits=100, key=new_key(), reference="job:1")  # still spendable by its hold
    ledger_release(hold=held, credits=300, key=new_key(), reference="job:2")
    assert balance() == (0, 0)
    assert Entry.objects.filter(account__kind="breakage").count() == 2
    assert sum(Entry.objects.filter(account__kind="breakage").values_list("credits", flat=True)) == 900
    assert ledger_check().ok


def test_it_adjusts_upwards_with_a_lot_and_needs_a_reason_and_an_actor(team, new_key, member, demo, balance):
    actor = member(Role.FINANCE).user
    txn = ledger_adjust(team=team, credits=250, key=new_key(), actor=actor, reason="Missed grant in March")
    assert (txn.kind, txn.memo, txn.actor) == ("adjust", "Missed grant in March", actor)
    assert balance() == (250, 0)
    assert Entry.objects.get(transaction=txn, account__kind="adjustments").credits == -250
    with pytest.raises(InvalidInput) as no_reason:
        ledger_adjust(team=team, credits=5, key=new_key(), actor=actor, reason="  ")
    assert no_reason.value.field == "reason"
    with pytest.raises(InvalidInput) as no_actor:
        ledger_adjust(team=team, credits=5, key=new_key(), actor=None, reason="why")
    assert no_actor.value.field == "actor"


def test_it_adjusts_downwards_from_free_credits_only(team, grant, hold, new_key, member, demo, balance):
    actor = member(Role.OWNER).user
    grant(500)
    hold(300)
    with pytest.raises(InsufficientCredits) as refused:
        ledger_adjust(team=team, credits=-201, key=new_key(), actor=actor, reason="Duplicate grant")
    assert (refused.value.available, refused.value.needed) == (200, 201)
    ledger_adjust(team=team, credits=-200, key=new_key(), actor=actor, reason="Duplicate grant")
    assert balance() == (0, 300)
    assert ledger_check().ok


def test_a_downward_adjustment_takes_from_the_lots_in_burn_order(team, grant, new_key, member, balance):
    later = grant(100, expires_at=timezone.now() + timedelta(days=60))
    sooner = grant(100, expires_at=timezone.now() + timedelta(days=10))
    ledger_adjust(team=team, credits=-150, key=new_key(), actor=member(Role.OWNER).user, reason="Extra")
    sooner.refresh_from_db()
    later.refresh_from_db()
    assert (sooner.remaining, later.remaining) == (0, 50)  # the soonest-expiring credits go first
    assert balance() == (50, 0)
    assert ledger_check().ok


def test_a_correction_points_to_the_transaction_it_corrects(team, grant, new_key, member, demo):
    lot = grant(100)
    wrong = Transaction.objects.get(lot=lot)
    fix = ledger_adjust(
        team=team,
        credits=-100,
        key=new_key(),
        actor=member(Role.OWNER).user,
        reason="Granted twice",
        corrects=wrong,
    )
    assert fix.corrects == wrong
    assert list(wrong.corrections.all()) == [fix]
    assert Account.objects.get(team=team, kind="available").balance == 0
