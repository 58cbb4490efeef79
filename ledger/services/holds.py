"""Two-phase holds: credits move available → held, then held → usage (capture) or back (release).

A hold draws its credits from the team's lots in burn order and remembers which (`HoldLot`), so that:

- a capture spends the hold's credits in burn order too (soonest-expiring first);
- a release gives back the credits that burn last first, keeping the soonest-expiring reserved;
- a credit given back to a lot that has expired meanwhile goes to breakage, not back to available;
- a refund returns credits to the lots they were captured from, latest-expiring first (same rule).

A hold resolves once: closed (posted), voided, or timed out. A second resolution is refused
(`HoldAlreadyResolved`), never repeated.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone

from keter.accounts.models import Team
from keter.sql import prepared
from ledger.errors import (
    HoldAlreadyResolved,
    HoldExceeded,
    InsufficientCredits,
    LedgerError,
    RefundExceedsCaptured,
)
from ledger.models import Account, Hold, HoldLot, Lot, Transaction
from ledger.services import _pg
from ledger.services._core import (
    HOLD_STATE,
    Book,
    Outcome,
    as_json_moment,
    hold_reads,
    load_hold,
    pick_from_lots,
    post,
    refresh_caller_hold,
    require_credits,
    require_moment,
    run_operation,
    save_new,
    spendable_lots,
    spendable_lots_read,
)

A = Account.Kind
K = Transaction.Kind


def _hold_request(credits: int, reference: str, expires_at: datetime | None) -> dict:
    return {"credits": credits, "reference": reference, "expires_at": as_json_moment(expires_at)}


def ledger_hold(
    *, team: Team, credits: int, key: str, reference: str, expires_at: datetime | None = None
) -> Hold:
    """Set credits aside (available → held); `InsufficientCredits` if the spendable lots are short."""
    credits = require_credits(credits)
    expires_at = require_moment(expires_at, field="expires_at")
    request = _hold_request(credits, reference, expires_at)
    if _pg.enabled():
        return _pg.hold(
            team_id=team.pk,
            key=key,
            request=request,
            credits=credits,
            reference=reference,
            expires_at=expires_at,
        )

    def body(book: Book) -> Outcome:
        picks = pick_from_lots(spendable_lots(book), credits)
        hold = save_new(
            book,
            Hold(
                team_id=book.team_id,
                credits=credits,
                reference=reference,
                key=key,
                expires_at=expires_at,
                created_at=book.now,
            ),
        )
        legs = {A.AVAILABLE: -credits, A.HELD: credits}
        txn = post(book, kind=K.HOLD, legs=legs, key=key, hold=hold, reference=reference)
        book.writes.insert([HoldLot(hold=hold, lot=lot, reserved=take) for lot, take in picks])
        for lot, take in picks:
            lot.reserved += take
        book.writes.update([lot for lot, _ in picks], ("reserved",))
        return Outcome(hold, transaction=txn, hold=hold)

    return run_operation(
        kind=K.HOLD,
        key=key,
        team_id=team.pk,
        request=request,
        returns="hold",
        body=body,
        reads=lambda now: {"lots": spendable_lots_read(team.pk, now)},
        new_ids=(Hold, Transaction),
    )


def ledger_hold_extend(*, hold: Hold, credits: int, key: str) -> Hold:
    """Add credits to a pending hold (a change order), drawn from the lots like a new hold."""
    credits = require_credits(credits)

    def body(book: Book, fresh: Hold, allocations: list[HoldLot]) -> Outcome:
        _require_pending(fresh)
        picks = pick_from_lots(spendable_lots(book), credits)
        by_lot = {allocation.lot_id: allocation for allocation in allocations}
        new, grown = [], []
        for lot, take in picks:
            lot.reserved += take
            if lot.pk in by_lot:
                by_lot[lot.pk].reserved += take
                grown.append(by_lot[lot.pk])
            else:
                new.append(HoldLot(hold=fresh, lot=lot, reserved=take))
        fresh.credits += credits
        legs = {A.AVAILABLE: -credits, A.HELD: credits}
        txn = post(book, kind=K.HOLD_EXTEND, legs=legs, key=key, hold=fresh, reference=fresh.reference)
        book.writes.insert(new)
        book.writes.update(grown, ("reserved",))
        book.writes.update([lot for lot, _ in picks], ("reserved",))
        book.writes.update([fresh], ("credits",))
        return Outcome(fresh, transaction=txn, hold=fresh)

    request = {"credits": credits}
    return _on_hold(
        hold,
        kind=K.HOLD_EXTEND,
        key=key,
        request=request,
        returns="hold",
        body=body,
        needs_lots=True,
        credits=credits,
    )


def _moving_request(credits: int, reference: str) -> dict:
    # What capture and release record under their key; the combined operations below record the same,
    # so a retry through either replays the other.
    return {"credits": credits, "reference": reference}


def ledger_capture(*, hold: Hold, credits: int, key: str, reference: str) -> Transaction:
    """Spend part or all of what a pending hold keeps (held → usage). Several captures may follow one
    another while the hold is pending; together they never exceed it (`HoldExceeded`)."""
    credits = require_credits(credits)

    def body(book: Book, fresh: Hold, allocations: list[HoldLot]) -> Outcome:
        _require_pending(fresh, wanted=credits)
        touched, left = [], credits
        for allocation in sorted(_reserved(allocations), key=lambda a: a.lot.burn_key()):
            take = min(allocation.reserved, left)
            allocation.reserved -= take
            allocation.captured += take
            allocation.lot.reserved -= take
            allocation.lot.remaining -= take
            touched.append(allocation)
            left -= take
            if not left:
                break
        fresh.captured += credits
        legs = {A.HELD: -credits, A.USAGE: credits}
        txn = post(book, kind=K.CAPTURE, legs=legs, key=key, hold=fresh, reference=reference)
        book.writes.update([fresh], ("captured",))
        book.writes.update(touched, ("reserved", "captured"))
        book.writes.update([a.lot for a in touched], ("reserved", "remaining"))
        return Outcome(txn, transaction=txn, hold=fresh)

    request = _moving_request(credits, reference)
    return _on_hold(
        hold,
        kind=K.CAPTURE,
        key=key,
        request=request,
        returns="transaction",
        body=body,
        credits=credits,
        reference=reference,
    )


def ledger_release(*, hold: Hold, credits: int, key: str, reference: str = "") -> Transaction:
    """Give part of a pending hold back (held → available) while it stays open, e.g. a failed take."""
    credits = require_credits(credits)

    def body(book: Book, fresh: Hold, allocations: list[HoldLot]) -> Outcome:
        _require_pending(fresh, wanted=credits)
        fresh.released += credits
        txn = _give_back(book, fresh, allocations, credits, kind=K.RELEASE, key=key, reference=reference)
        book.writes.update([fresh], ("released",))
        return Outcome(txn, transaction=txn, hold=fresh)

    request = _moving_request(credits, reference)
    return _on_hold(
        hold,
        kind=K.RELEASE,
        key=key,
        request=request,
        returns="transaction",
        body=body,
        credits=credits,
        reference=reference,
    )


def ledger_close_hold(*, hold: Hold, key: str) -> Hold:
    """Post the hold: what was captured stays spent, the rest is released, and the hold is done."""
    return _resolve(hold=hold, key=key, status=Hold.Status.POSTED, kind=K.HOLD_CLOSE)


def ledger_void_hold(*, hold: Hold, key: str) -> Hold:
    """Cancel the hold: everything not captured is released, and the hold is done."""
    return _resolve(hold=hold, key=key, status=Hold.Status.VOIDED, kind=K.HOLD_VOID)


def ledger_refund(
    *, hold: Hold, credits: int, key: str, reference: str, corrects: Transaction | None = None
) -> Transaction:
    """Give back captured credits (usage → available), never more than captured on the hold minus
    what was refunded already (`RefundExceedsCaptured`). Allowed whatever the hold's status."""
    credits = require_credits(credits)

    def body(book: Book, fresh: Hold, allocations: list[HoldLot]) -> Outcome:
        if credits > fresh.refundable:
            raise RefundExceedsCaptured(hold_id=fresh.pk, refundable=fresh.refundable, requested=credits)
        to_available = to_breakage = 0
        touched, lots, left = [], [], credits
        refundable = [a for a in allocations if a.captured > a.refunded]
        for allocation in sorted(refundable, key=lambda a: a.lot.burn_key(), reverse=True):
            take = min(allocation.captured - allocation.refunded, left)
            allocation.refunded += take
            touched.append(allocation)
            if allocation.lot.status == Lot.Status.ACTIVE:
                allocation.lot.remaining += take
                lots.append(allocation.lot)
                to_available += take
            else:
                to_breakage += take  # the lot expired meanwhile: its credits cannot come back
            left -= take
            if not left:
                break
        fresh.refunded += credits
        legs = {A.USAGE: -credits, A.AVAILABLE: to_available, A.BREAKAGE: to_breakage}
        txn = post(
            book, kind=K.REFUND, legs=legs, key=key, hold=fresh, reference=reference, corrects=corrects
        )
        book.writes.update([fresh], ("refunded",))
        book.writes.update(touched, ("refunded",))
        book.writes.update(lots, ("remaining",))
        return Outcome(txn, transaction=txn, hold=fresh)

    request = {"credits": credits, "reference": reference, "corrects": corrects.pk if corrects else None}
    return _on_hold(hold, kind=K.REFUND, key=key, request=request, returns="transaction", body=body)


@dataclass(frozen=True)
class CaptureAndClose:
    """`ledger_capture` of `credits` (`key`), then `ledger_close_hold` (`close_key`): a take that
    succeeded. Resolves to the capture's Transaction."""

    hold: Hold
    credits: int
    key: str
    close_key: str
    reference: str

    def steps(self, group: int) -> list[_pg.Step]:
        capture = {"hold": self.hold.pk, **_moving_request(self.credits, self.reference)}
        return [
            _pg.Step(K.CAPTURE, self.hold, self.key, capture, self.credits, self.reference, group),
            _pg.Step(K.HOLD_CLOSE, self.hold, self.close_key, {"hold": self.hold.pk}, group=group),
        ]

    def one_by_one(self) -> Transaction:
        txn = ledger_capture(hold=self.hold, credits=self.credits, key=self.key, reference=self.reference)
        ledger_close_hold(hold=self.hold, key=self.close_key)
        return txn

    def result(self, outcomes: list):
        capture, close = outcomes
        return next((o for o in (capture, close) if isinstance(o, Exception)), capture)


@dataclass(frozen=True)
class VoidInto:
    """`ledger_void_hold` (`key`), then `ledger_hold_extend` of `into` by `credits` (`into_key`): a take's
    reservation going back to its project's budget. Resolves to True if `into` took the credits; False if
    it could not (resolved meanwhile, or the lots are short, e.g. the credits came from a lot that
    expired): they stay with the team then, and that refusal is kept under `into_key` as usual."""

    hold: Hold
    key: str
    into: Hold
    into_key: str
    credits: int

    def steps(self, group: int) -> list[_pg.Step]:
        extend = {"hold": self.into.pk, "credits": self.credits}
        return [
            _pg.Step(K.HOLD_VOID, self.hold, self.key, {"hold": self.hold.pk}, group=group),
            _pg.Step(K.HOLD_EXTEND, self.into, self.into_key, extend, self.credits, group=group),
        ]

    def one_by_one(self) -> bool:
        ledger_void_hold(hold=self.hold, key=self.key)
        try:
            ledger_hold_extend(hold=self.into, credits=self.credits, key=self.into_key)
        except (HoldAlreadyResolved, InsufficientCredits):
            return False
        return True

    def result(self, outcomes: list):
        void, extend = outcomes
        if isinstance(extend, HoldAlreadyResolved | InsufficientCredits):
            return False  # the budget could not take them back
        return next((o for o in (void, extend) if isinstance(o, Exception)), True)


def ledger_resolve_holds(*, resolutions: list[CaptureAndClose | VoidInto]) -> list:
    """Settle several holds of one team: each resolution runs as its operations would one after the
    other, and they are all sent together (one round trip on PostgreSQL, however many). Returns each
    one's result, in order. A refusal that ends a resolution early (a refused capture or void) is raised
    once all have run: call it inside the transaction that should be rolled back then."""
    for resolution in resolutions:
        require_credits(resolution.credits)
    if _pg.enabled():
        call = ledger_resolve_holds_call(resolutions=resolutions)
        return call.results(prepared(call.sql, call.params))
    results = []
    for resolution in resolutions:
        try:
            results.append(resolution.one_by_one())
        except LedgerError as refusal:
            results.append(refusal)
    return _raise_refusal(results)


@dataclass(frozen=True)
class LedgerCall:
    """A ledger call ready to send: its statement, and `results`, what its rows mean (raising as the
    service would). For a caller that sends it in the same round trip as statements of its own
    (`keter.sql.prepared_many`), inside the transaction the call belongs to."""

    sql: str
    params: list
    results: Callable[[list[tuple]], list]


# The SQLSTATE of an all-or-nothing call (`ledger_resolve_holds_call(all_or_nothing=True)`) that found an
# operation it could not do: refused, or in conflict with its key's first outcome.
NOT_ALL_DONE = "KL001"


def ledger_resolve_holds_call(
    *, resolutions: list[CaptureAndClose | VoidInto], all_or_nothing: bool = False
) -> LedgerCall:
    """`ledger_resolve_holds` as a call to send (on PostgreSQL, where it is one statement).

    `all_or_nothing` is for a caller whose transaction commits before it reads the rows (statements sent
    as one implicit transaction): the statement fails with SQLSTATE `NOT_ALL_DONE` instead of reporting an
    operation that was not done, so nothing of the transaction stays (ledger migration 0010). The caller
    then settles again the ordinary way, where that refusal is raised as its own error."""
    if not _pg.enabled():
        raise RuntimeError("ledger_resolve_holds_call: the hold operations run as statements on PostgreSQL")
    for resolution in resolutions:
        require_credits(resolution.credits)
    team_ids = {resolution.hold.team_id for resolution in resolutions}
    if len(team_ids) != 1:
        raise ValueError("ledger_resolve_holds settles the holds of one team at a time")
    plans = [resolution.steps(group) for group, resolution in enumerate(resolutions)]
    steps = [step for plan in plans for step in plan]
    sql = _pg.SETTLE_ALL_SQL if all_or_nothing else _pg.SETTLE_SQL
    sql, params, outcomes = _pg.steps_call(team_id=team_ids.pop(), steps=steps, sql=sql)

    def results(rows: list[tuple]) -> list:
        found, start, done = [], 0, outcomes(rows)
        for resolution, plan in zip(resolutions, plans, strict=True):
            found.append(resolution.result(done[start : start + len(plan)]))
            start += len(plan)
        return _raise_refusal(found)

    return LedgerCall(sql, params, results)


def _raise_refusal(results: list) -> list:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


@dataclass(frozen=True)
class HoldPart:
    """A part of a hold to move into a hold of its own: released under `release_key`, held under `key`."""

    credits: int
    release_key: str
    key: str
    reference: str


def ledger_hold_split(*, hold: Hold, parts: list[HoldPart]) -> list[Hold]:
    """Move credits out of a pending hold into new holds, part by part: `ledger_release` of the part from
    `hold`, then `ledger_hold` of as many (a project's budget giving each launched take a reservation of
    its own). As if called one after the other, all sent together (one round trip on PostgreSQL); the
    first refusal stops there and is raised, the parts before it staying done (call it inside the
    transaction that should undo them). Returns the new holds, in order."""
    parts = [replace(part, credits=require_credits(part.credits)) for part in parts]
    if not parts:
        return []
    if not _pg.enabled():
        team = Team(pk=hold.team_id)
        new = []
        for part in parts:
            ledger_release(hold=hold, credits=part.credits, key=part.release_key, reference=part.reference)
            new.append(ledger_hold(team=team, credits=part.credits, key=part.key, reference=part.reference))
        return new
    steps = []
    for part in parts:
        release = {"hold": hold.pk, **_moving_request(part.credits, part.reference)}
        steps.append(_pg.Step(K.RELEASE, hold, part.release_key, release, part.credits, part.reference))
        held = _hold_request(part.credits, part.reference, None)
        steps.append(_pg.Step(K.HOLD, None, part.key, held, part.credits, part.reference))
    return _pg.steps(team_id=hold.team_id, steps=steps, split=True)[1::2]


def ledger_expire_holds(*, now: datetime | None = None) -> int:
    """Time out every pending hold past its `expires_at`: the uncaptured rest is released. Returns how
    many timed out; a hold resolved meanwhile by someone else is left as it is."""
    now = now or timezone.now()
    due = Hold.objects.filter(status=Hold.Status.PENDING, expires_at__lte=now).order_by("team_id", "id")
    expired = 0
    for hold in due.only("id", "team_id"):
        try:
            _resolve(hold=hold, key=f"expire:hold:{hold.pk}", status=Hold.Status.EXPIRED, kind=K.HOLD_EXPIRE)
        except HoldAlreadyResolved:
            continue
        expired += 1
    return expired


def _resolve(*, hold: Hold, key: str, status: str, kind: str) -> Hold:
    def body(book: Book, fresh: Hold, allocations: list[HoldLot]) -> Outcome:
        _require_pending(fresh)
        remainder = fresh.open_credits
        txn = None
        if remainder:
            fresh.released += remainder
            txn = _give_back(
                book, fresh, allocations, remainder, kind=kind, key=key, reference=fresh.reference
            )
        fresh.status = status
        fresh.resolved_at = book.now
        book.writes.update([fresh], ("released", "status", "resolved_at"))
        return Outcome(fresh, transaction=txn, hold=fresh)

    return _on_hold(hold, kind=kind, key=key, request={}, returns="hold", body=body)


def _on_hold(
    hold: Hold,
    *,
    kind: str,
    key: str,
    request: dict,
    returns: str,
    body,
    needs_lots: bool = False,
    credits: int | None = None,
    reference: str = "",
) -> object:
    """Run an operation on an existing hold, read afresh under the team lock (the caller's copy may be
    stale), and bring the caller's copy up to date afterwards.

    On PostgreSQL, capture, release, extension and the resolutions run as one database function call
    (`_pg`); refunds, rarer and with more rules, keep the Python body (`body`) everywhere."""
    if kind != K.REFUND and _pg.enabled():
        request = {"hold": hold.pk, **request}
        return _pg.hold_step(
            kind=kind,
            hold=hold,
            key=key,
            request=request,
            credits=credits,
            reference=reference,
            returns=returns,
        )
    seen = {}

    def reads(now):
        wanted = hold_reads(hold.pk)
        if needs_lots:
            wanted["lots"] = spendable_lots_read(hold.team_id, now)
        return wanted

    def with_fresh_hold(book: Book) -> Outcome:
        seen["hold"], allocations = load_hold(book)
        return body(book, seen["hold"], allocations)

    try:
        result = run_operation(
            kind=kind,
            key=key,
            team_id=hold.team_id,
            request={"hold": hold.pk, **request},
            returns=returns,
            body=with_fresh_hold,
            reads=reads,
        )
    except LedgerError:
        _sync_caller(hold, seen)  # bodies refuse before writing: the fresh copy is what is committed
        raise
    _sync_caller(hold, seen)
    return result


def _sync_caller(hold: Hold, seen: dict) -> None:
    if "hold" in seen:
        refresh_caller_hold(hold, seen["hold"])
    else:
        hold.refresh_from_db(fields=HOLD_STATE)  # a replay: the hold may have moved on since


def _give_back(book, hold, allocations, credits, *, kind, key, reference) -> Transaction:
    """Release `credits` of the hold's reservations, the credits that burn last first."""
    to_available = to_breakage = 0
    touched, left = [], credits
    for allocation in sorted(_reserved(allocations), key=lambda a: a.lot.burn_key(), reverse=True):
        take = min(allocation.reserved, left)
        allocation.reserved -= take
        allocation.released += take
        lot = allocation.lot
        lot.reserved -= take
        if lot.status == Lot.Status.ACTIVE:
            to_available += take
        else:
            lot.remaining -= take  # an expired lot's credits cannot come back: breakage
            to_breakage += take
        touched.append(allocation)
        left -= take
        if not left:
            break
    legs = {A.HELD: -credits, A.AVAILABLE: to_available, A.BREAKAGE: to_breakage}
    txn = post(book, kind=kind, legs=legs, key=key, hold=hold, reference=reference)
    book.writes.update(touched, ("reserved", "released"))
    book.writes.update([a.lot for a in touched], ("reserved", "remaining"))
    return txn


def _require_pending(hold: Hold, *, wanted: int | None = None) -> None:
    if not hold.is_pending:
        raise HoldAlreadyResolved(hold_id=hold.pk, status=hold.status)
    if wanted is not None and wanted > hold.open_credits:
        raise HoldExceeded(hold_id=hold.pk, open_credits=hold.open_credits, requested=wanted)


def _reserved(allocations: list[HoldLot]) -> list[HoldLot]:
    return [allocation for allocation in allocations if allocation.reserved > 0]
