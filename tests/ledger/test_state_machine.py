"""Model-based test: random workloads against the ledger and a plain-Python model of it.

The model predicts every outcome (the balances, and whether an operation is refused and why);
after every step the database must agree with it and `ledger_check` must find nothing wrong.
Each example runs inside a savepoint that is rolled back, so examples never see each other.
"""

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from keter.accounts.models import Plan, Team, User
from ledger.checks import ledger_check
from ledger.errors import (
    HoldAlreadyResolved,
    HoldExceeded,
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    RefundExceedsCaptured,
)
from ledger.models import Account, Entry
from ledger.services import (
    ledger_adjust,
    ledger_capture,
    ledger_close_hold,
    ledger_expire_holds,
    ledger_expire_lots,
    ledger_grant,
    ledger_hold,
    ledger_hold_extend,
    ledger_refund,
    ledger_release,
    ledger_top_up,
    ledger_void_hold,
)

# ---- the model --------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, error: type[LedgerError]):
        self.error = error


@dataclass
class MLot:
    seq: int
    credits: int
    priority: int
    category: str
    expires: datetime | None
    remaining: int = 0
    reserved: int = 0
    expired: bool = False

    def __post_init__(self):
        self.remaining = self.credits

    @property
    def free(self) -> int:
        return self.remaining - self.reserved

    def burn(self):
        return (
            self.priority,
            self.expires is None,
            self.expires or 0,
            self.category != "promotional",
            self.seq,
        )


@dataclass
class MAlloc:
    reserved: int = 0
    captured: int = 0
    refunded: int = 0


@dataclass
class MHold:
    credits: int
    expires: datetime | None
    captured: int = 0
    released: int = 0
    refunded: int = 0
    status: str = "pending"
    alloc: dict = field(default_factory=dict)  # lot seq -> MAlloc

    @property
    def open(self) -> int:
        return self.credits - self.captured - self.released if self.status == "pending" else 0


class Model:
    """The rules of the ledger, written as plainly as possible."""

    def __init__(self):
        self.lots: dict[int, MLot] = {}
        self.holds: list[MHold] = []
        self.usage = self.breakage = 0

    @property
    def available(self) -> int:
        return sum(lot.free for lot in self.lots.values() if not lot.expired)

    @property
    def held(self) -> int:
        return sum(h.open for h in self.holds)

    def add_lot(self, credits, priority=0, category="promotional", expires=None) -> None:
        seq = len(self.lots)
        self.lots[seq] = MLot(seq, credits, priority, category, expires)

    def _pick(self, credits: int) -> list[tuple[MLot, int]]:
        lots = sorted((lot for lot in self.lots.values() if not lot.expired and lot.free > 0), key=MLot.burn)
        if sum(lot.free for lot in lots) < credits:
            raise Refused(InsufficientCredits)
        picks, left = [], credits
        for lot in lots:
            take = min(lot.free, left)
            picks.append((lot, take))
            left -= take
            if not left:
                break
        return picks

    def hold(self, credits, expires) -> int:
        picks = self._pick(credits)
        hold = MHold(credits, expires)
        for lot, take in picks:
            lot.reserved += take
            hold.alloc[lot.seq] = MAlloc(reserved=take)
        self.holds.append(hold)
        return len(self.holds) - 1

    def _pending(self, hold: MHold, wanted: int | None = None) -> None:
        if hold.status != "pending":
            raise Refused(HoldAlreadyResolved)
        if wanted is not None and wanted > hold.open:
            raise Refused(HoldExceeded)

    def extend(self, hold: MHold, credits: int) -> None:
        self._pending(hold)
        for lot, take in self._pick(credits):
            lot.reserved += take
            hold.alloc.setdefault(lot.seq, MAlloc()).reserved += take
        hold.credits += credits

    def _by_burn(self, hold: MHold, reverse=False):
        return sorted(hold.alloc.items(), key=lambda item: self.lots[item[0]].burn(), reverse=reverse)

    def capture(self, hold: MHold, credits: int) -> None:
        self._pending(hold, credits)
        left = credits
        for seq, alloc in self._by_burn(hold):
            take = min(alloc.reserved, left)
            alloc.reserved -= take
            alloc.captured += take
            self.lots[seq].reserved -= take
            self.lots[seq].remaining -= take
            left -= take
        hold.captured += credits
        self.usage += credits

    def _give_back(self, hold: MHold, credits: int) -> None:
        left = credits
        for seq, alloc in self._by_burn(hold, reverse=True):
            take = min(alloc.reserved, left)
            alloc.reserved -= take
            lot = self.lots[seq]
            lot.reserved -= take
            if lot.expired:
                lot.remaining -= take
                self.breakage += take
            left -= take
        hold.released += credits

    def release(self, hold: MHold, credits: int) -> None:
        self._pending(hold, credits)
        self._give_back(hold, credits)

    def resolve(self, hold: MHold, status: str) -> None:
        self._pending(hold)
        self._give_back(hold, hold.open)
        hold.status = status

    def refund(self, hold: MHold, credits: int) -> None:
        if credits > hold.captured - hold.refunded:
            raise Refused(RefundExceedsCaptured)
        left = credits
        for seq, alloc in self._by_burn(hold, reverse=True):
            take = min(alloc.captured - alloc.refunded, left)
            alloc.refunded += take
            if self.lots[seq].expired:
                self.breakage += take
            else:
                self.lots[seq].remaining += take
            left -= take
        hold.refunded += credits
        self.usage -= credits

    def adjust(self, credits: int) -> None:
        if credits > 0:
            self.add_lot(credits)
            return
        needed = -credits
        lots = sorted(
            (lot for lot in self.lots.values() if not lot.expired and lot.remaining > 0), key=MLot.burn
        )
        if sum(lot.free for lot in lots) < needed:
            raise Refused(InsufficientCredits)
        for lot in lots:
            take = min(lot.free, needed)
            lot.remaining -= take
            needed -= take

    def advance_to(self, now: datetime) -> None:
        for lot in self.lots.values():
            if not lot.expired and lot.expires is not None and lot.expires <= now:
                self.breakage += lot.free
                lot.remaining = lot.reserved
                lot.expired = True
        for hold in self.holds:
            if hold.status == "pending" and hold.expires is not None and hold.expires <= now:
                self.resolve(hold, "expired")


def part_of(whole: int, share: int) -> int:
    return max(1, whole * share // 100) if whole else share


# ---- the machine --------------------------------------------------------------------------------

credits = st.integers(min_value=1, max_value=1_500)
# A capture, release or refund asks for a share of what it could take, in %: above 100 is too much.
shares = st.sampled_from([100, 100, 50, 10, 1, 101, 150])
# Days until an expiry, or None (about one time in four) for none.
maybe_days = st.integers(min_value=-12, max_value=40).map(lambda d: d if d > 0 else None)


class LedgerMachine(RuleBasedStateMachine):
    steps_run = 0  # across examples, so the test can prove the machine really ran

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.model = Model()
        self.now = timezone.now()  # the machine's clock; only moves forward
        self.holds = []  # database holds, parallel to model.holds
        self.history = []  # (service, kwargs, outcome) for retries
        self.keys = 0

    @initialize(plan_credits=st.integers(100, 3_000), days=st.integers(1, 30))
    def open_team(self, plan_credits, days):
        self.team = Team.objects.create(name="Machine", slug="machine", plan=Plan.objects.get(slug="pro"))
        self.actor = User.objects.create_user(email="machine@keter.local", password=None)
        self.grant(plan_credits, 0, days, paid=False)  # like a plan grant: expires, so expiry gets exercised

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    # Every call goes through here: run the service, compare with what the model predicted.
    def attempt(self, service, predict, **kwargs):
        LedgerMachine.steps_run += 1
        self.keys += 1
        kwargs.setdefault("key", f"m:{service.__name__}:{self.keys}")
        try:
            expected = ("ok", predict())
        except Refused as refusal:
            expected = ("refused", refusal.error)
        try:
            result = service(**kwargs)
            outcome = ("ok", result)
        except LedgerError as error:
            outcome = ("refused", type(error))
        note(f"{service.__name__}({kwargs.get('credits', '')}) -> {outcome[0]} {outcome[1]!r:.60}")
        assert outcome[0] == expected[0], (service.__name__, kwargs, outcome, expected)
        if outcome[0] == "refused":
            assert outcome[1] is expected[1], (outcome, expected)
        self.history.append((service, kwargs, outcome))
        return outcome

    def at(self, days):
        return None if days is None else self.now + timedelta(days=days)

    @rule(amount=credits, priority=st.integers(-1, 1), days=maybe_days, paid=st.booleans())
    def grant(self, amount, priority, days, paid):
        category = "paid" if paid else "promotional"
        expires = self.at(days)
        self.attempt(
            ledger_grant,
            lambda: self.model.add_lot(amount, priority, category, expires),
            team=self.team,
            credits=amount,
            priority=priority,
            category=category,
            expires_at=expires,
        )

    @rule(amount=st.integers(1_000, 4_000))
    def top_up(self, amount):
        self.attempt(
            ledger_top_up, lambda: self.model.add_lot(amount, 0, "paid"), team=self.team, credits=amount
        )

    @rule(amount=st.integers(1, 3_000), days=maybe_days)
    def hold(self, amount, days):
        expires = self.at(days)
        outcome = self.attempt(
            ledger_hold,
            lambda: self.model.hold(amount, expires),
            team=self.team,
            credits=amount,
            reference=f"approval:{self.keys}",
            expires_at=expires,
        )
        if outcome[0] == "ok":
            self.holds.append(outcome[1])

    def pick(self, index):
        i = index % len(self.holds)
        return self.holds[i], self.model.holds[i]

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(0, 50), amount=st.integers(1, 1_000))
    def extend(self, index, amount):
        db, model = self.pick(index)
        self.attempt(ledger_hold_extend, lambda: self.model.extend(model, amount), hold=db, credits=amount)

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(0, 50), share=shares)
    def capture(self, index, share):
        db, model = self.pick(index)
        amount = part_of(model.open, share)
        self.attempt(
            ledger_capture,
            lambda: self.model.capture(model, amount),
            hold=db,
            credits=amount,
            reference="job:1",
        )

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(0, 50), share=shares)
    def release(self, index, share):
        db, model = self.pick(index)
        amount = part_of(model.open, share)
        self.attempt(
            ledger_release,
            lambda: self.model.release(model, amount),
            hold=db,
            credits=amount,
            reference="job:2",
        )

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(0, 50), void=st.booleans())
    def resolve(self, index, void):
        db, model = self.pick(index)
        service = ledger_void_hold if void else ledger_close_hold
        self.attempt(service, lambda: self.model.resolve(model, "voided" if void else "posted"), hold=db)

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(0, 50), share=shares)
    def refund(self, index, share):
        db, model = self.pick(index)
        amount = part_of(model.captured - model.refunded, share)
        self.attempt(
            ledger_refund,
            lambda: self.model.refund(model, amount),
            hold=db,
            credits=amount,
            reference="job:1",
        )

    @rule(amount=st.integers(-1_500, 1_500).filter(bool))
    def adjust(self, amount):
        self.attempt(
            ledger_adjust,
            lambda: self.model.adjust(amount),
            team=self.team,
            credits=amount,
            actor=self.actor,
            reason="machine",
        )

    @rule(days=st.integers(1, 20))
    def time_passes(self, days):
        LedgerMachine.steps_run += 1
        self.now += timedelta(days=days)
        self.model.advance_to(self.now)
        ledger_expire_lots(now=self.now)
        ledger_expire_holds(now=self.now)
        for db in self.holds:
            db.refresh_from_db()

    @precondition(lambda self: self.history)
    @rule(index=st.integers(0, 200))
    def retry_the_same(self, index):
        LedgerMachine.steps_run += 1
        service, kwargs, first = self.history[index % len(self.history)]
        try:
            again = ("ok", service(**kwargs))
        except LedgerError as error:
            again = ("refused", type(error))
        note(f"retry {service.__name__} {kwargs['key']} -> {again[0]}")
        assert again[0] == first[0]
        if first[0] == "ok":
            assert again[1].pk == first[1].pk  # the first lot, hold or transaction, not a new one
        else:
            assert again[1] is first[1]

    @precondition(lambda self: any("credits" in kwargs for _, kwargs, _ in self.history))
    @rule(index=st.integers(0, 200))
    def retry_with_other_input(self, index):
        LedgerMachine.steps_run += 1
        changeable = [(s, k) for s, k, _ in self.history if "credits" in k]
        service, kwargs = changeable[index % len(changeable)]
        credits = kwargs["credits"]
        changed = {**kwargs, "credits": credits + 1 if credits > 0 else credits - 1}
        with pytest.raises(IdempotencyConflict):
            service(**changed)

    @invariant()
    def the_ledger_agrees_with_the_model(self):
        if not hasattr(self, "team"):
            return
        balances = dict(Account.objects.filter(team=self.team).values_list("kind", "balance"))
        assert balances.get("available", 0) == self.model.available
        assert balances.get("held", 0) == self.model.held
        usage = sum(
            Entry.objects.filter(account__kind="usage", transaction__team=self.team).values_list(
                "credits", flat=True
            )
        )
        breakage = sum(
            Entry.objects.filter(account__kind="breakage", transaction__team=self.team).values_list(
                "credits", flat=True
            )
        )
        assert (usage, breakage) == (self.model.usage, self.model.breakage)
        for db, model in zip(self.holds, self.model.holds, strict=True):
            db.refresh_from_db()
            assert (db.status, db.credits, db.captured, db.released, db.refunded) == (
                model.status,
                model.credits,
                model.captured,
                model.released,
                model.refunded,
            )
        report = ledger_check()
        assert report.ok, report.violations


# Modest by default so the suite stays quick; KETER_LEDGER_EXAMPLES=500 explores much further.
EXAMPLES = int(os.environ.get("KETER_LEDGER_EXAMPLES", "20"))


def test_the_ledger_behaves_like_its_model_under_random_workloads(db, plans):
    LedgerMachine.steps_run = 0
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            database=None,
        ),
    )
    assert LedgerMachine.steps_run > EXAMPLES * 10  # the machine really ran its steps
