"""Several hold operations at once: splitting a budget into per-take holds, settling takes together.

Each is the single operations run one after the other under their own keys (so a retry of either kind
replays the other), sent together: one round trip on PostgreSQL.
"""

import pytest
from django.db import DatabaseError, transaction

from keter.sql import prepared
from ledger.checks import ledger_check
from ledger.errors import HoldAlreadyResolved, HoldExceeded
from ledger.models import Operation, Transaction
from ledger.services import (
    NOT_ALL_DONE,
    CaptureAndClose,
    HoldPart,
    VoidInto,
    ledger_capture,
    ledger_close_hold,
    ledger_hold_split,
    ledger_resolve_holds,
    ledger_resolve_holds_call,
    ledger_void_hold,
)


@pytest.fixture
def budget(grant, hold):
    grant(1_000)
    return hold(600, reference="project:1")


def parts(*credits: int) -> list[HoldPart]:
    return [
        HoldPart(credits=c, release_key=f"reserve:job:{n}", key=f"hold:job:{n}", reference=f"job:{n}")
        for n, c in enumerate(credits, start=1)
    ]


def test_a_split_moves_each_part_of_a_budget_into_a_hold_of_its_own(team, budget, balance):
    takes = ledger_hold_split(hold=budget, parts=parts(40, 60))
    assert [(h.credits, h.reference, h.key, h.status) for h in takes] == [
        (40, "job:1", "hold:job:1", "pending"),
        (60, "job:2", "hold:job:2", "pending"),
    ]
    assert (budget.released, budget.open_credits) == (100, 500)  # the caller's copy is kept up to date
    assert balance() == (400, 600)  # nothing left the team's held credits
    kinds = list(Transaction.objects.filter(team=team).order_by("id").values_list("kind", "key"))
    assert kinds[-4:] == [
        ("release", "reserve:job:1"),
        ("hold", "hold:job:1"),
        ("release", "reserve:job:2"),
        ("hold", "hold:job:2"),
    ]
    assert ledger_check().ok


def test_a_split_stops_at_the_first_part_the_budget_cannot_give(team, budget, balance):
    with pytest.raises(HoldExceeded) as refused:
        ledger_hold_split(hold=budget, parts=parts(500, 200, 50))
    assert (refused.value.open_credits, refused.value.requested) == (100, 200)
    assert balance() == (400, 600)  # the first part moved; the third was never tried
    assert not Operation.objects.filter(key="hold:job:3").exists()
    assert Operation.objects.get(key="reserve:job:2").outcome == "refused"


def test_a_split_retried_replays_its_parts(team, budget, balance):
    first = ledger_hold_split(hold=budget, parts=parts(40, 60))
    again = ledger_hold_split(hold=budget, parts=parts(40, 60))
    assert [h.pk for h in again] == [h.pk for h in first]
    assert balance() == (400, 600)


def test_takes_settle_together_each_as_its_operations_would(team, budget, balance):
    succeeded, failed = ledger_hold_split(hold=budget, parts=parts(40, 60))
    capture, returned = ledger_resolve_holds(
        resolutions=[
            CaptureAndClose(
                hold=succeeded, credits=40, key="capture:job:1", close_key="close:job:1", reference="job:1"
            ),
            VoidInto(hold=failed, key="void:job:2", into=budget, into_key="return:job:2", credits=60),
        ]
    )
    assert (capture.kind, capture.reference, capture.hold_id) == ("capture", "job:1", succeeded.pk)
    assert returned is True
    assert (succeeded.status, succeeded.captured) == ("posted", 40)
    assert (failed.status, failed.released) == ("voided", 60)
    assert budget.open_credits == 560  # 600 - 40 spent by take 1; take 2's 60 came back
    assert balance() == (400, 560)
    # The same keys as the single operations: a retry through them replays.
    assert ledger_capture(hold=succeeded, credits=40, key="capture:job:1", reference="job:1").pk == capture.pk
    assert ledger_close_hold(hold=succeeded, key="close:job:1").status == "posted"
    assert ledger_check().ok


def test_credits_the_budget_can_no_longer_take_stay_available(team, budget, balance):
    (take,) = ledger_hold_split(hold=budget, parts=parts(60))
    ledger_void_hold(hold=budget, key="void:project:1")
    (returned,) = ledger_resolve_holds(
        resolutions=[VoidInto(hold=take, key="void:job:1", into=budget, into_key="return:job:1", credits=60)]
    )
    assert returned is False
    assert take.status == "voided"
    assert balance() == (1_000, 0)
    assert Operation.objects.get(key="return:job:1").error_code == "hold_already_resolved"


def test_a_refused_settlement_is_raised_once_the_others_have_run(team, budget, balance):
    first, second = ledger_hold_split(hold=budget, parts=parts(40, 60))
    ledger_void_hold(hold=first, key="void:elsewhere")
    with pytest.raises(HoldAlreadyResolved):
        ledger_resolve_holds(
            resolutions=[
                CaptureAndClose(
                    hold=first, credits=40, key="capture:job:1", close_key="close:job:1", reference="j"
                ),
                CaptureAndClose(
                    hold=second, credits=60, key="capture:job:2", close_key="close:job:2", reference="j"
                ),
            ]
        )
    assert not Operation.objects.filter(key="close:job:1").exists()  # its capture was refused
    assert second.status == "posted"  # the other one ran: the caller's transaction decides


def settle_both(succeeded, failed, budget) -> list:
    return [
        CaptureAndClose(
            hold=succeeded, credits=40, key="capture:job:1", close_key="close:job:1", reference="job:1"
        ),
        VoidInto(hold=failed, key="void:job:2", into=budget, into_key="return:job:2", credits=60),
    ]


@pytest.mark.postgres
def test_an_all_or_nothing_settlement_that_goes_through_reads_as_the_ordinary_one(team, budget, balance):
    succeeded, failed = ledger_hold_split(hold=budget, parts=parts(40, 60))
    call = ledger_resolve_holds_call(resolutions=settle_both(succeeded, failed, budget), all_or_nothing=True)

    capture, returned = call.results(prepared(call.sql, call.params))

    assert (capture.kind, capture.hold_id, returned) == ("capture", succeeded.pk, True)
    assert balance() == (400, 560)
    assert ledger_check().ok


@pytest.mark.postgres
def test_an_all_or_nothing_settlement_fails_whole_where_an_operation_would_not_be_done(team, budget, balance):
    succeeded, failed = ledger_hold_split(hold=budget, parts=parts(40, 60))
    ledger_void_hold(hold=budget, key="void:project:1")  # the budget can no longer take take 2's credits
    call = ledger_resolve_holds_call(resolutions=settle_both(succeeded, failed, budget), all_or_nothing=True)

    with pytest.raises(DatabaseError) as refused, transaction.atomic():
        prepared(call.sql, call.params)

    assert refused.value.__cause__.sqlstate == NOT_ALL_DONE
    # Not even take 1's capture, which went through before take 2's return was refused.
    assert not Operation.objects.filter(key__in=["capture:job:1", "void:job:2", "return:job:2"]).exists()
    assert balance() == (900, 100)  # as the void of the budget left it: both takes still held
    assert ledger_check().ok
