"""Credits arriving and leaving outside holds: grants, top-ups, adjustments and expiry of lots."""

from datetime import datetime

from django.utils import timezone

from keter.accounts.models import Team, User
from ledger.errors import InvalidInput, TopUpTooSmall
from ledger.models import Account, Lot, Transaction
from ledger.services._core import (
    Book,
    Outcome,
    as_json_moment,
    pick_from_lots,
    post,
    require_credits,
    require_moment,
    run_operation,
    save_new,
)

MIN_TOP_UP = 1_000  # credits are sold in packs of at least 1,000 (shared/reference/video-pricing.md)
A = Account.Kind


def ledger_grant(
    *,
    team: Team,
    credits: int,
    key: str,
    reference: str = "",
    expires_at: datetime | None = None,
    effective_at: datetime | None = None,
    category: str = Lot.Category.PROMOTIONAL,
    priority: int = 0,
    actor: User | None = None,
    memo: str = "",
) -> Lot:
    """Give a team credits (plan credits, goodwill): a new lot, posted from grant issuance to available.

    A lot that is not effective yet counts in `available` but no hold may draw from it before
    `effective_at`; nothing is drawn from it after `expires_at` either, when its rest turns to breakage.
    """
    credits = require_credits(credits)
    return _add_lot(
        team=team,
        credits=credits,
        key=key,
        kind=Transaction.Kind.GRANT,
        source=A.ISSUANCE_GRANTS,
        reference=reference,
        expires_at=expires_at,
        effective_at=effective_at,
        category=category,
        priority=priority,
        actor=actor,
        memo=memo,
    )


def ledger_top_up(
    *,
    team: Team,
    credits: int,
    key: str,
    reference: str = "",
    actor: User | None = None,
    expires_at: datetime | None = None,
) -> Lot:
    """Record a purchase of credits (packs of at least 1,000): a paid lot that never expires unless set."""
    credits = require_credits(credits)
    if credits < MIN_TOP_UP:
        raise TopUpTooSmall(minimum=MIN_TOP_UP, requested=credits)
    return _add_lot(
        team=team,
        credits=credits,
        key=key,
        kind=Transaction.Kind.TOP_UP,
        source=A.ISSUANCE_PURCHASES,
        reference=reference,
        expires_at=expires_at,
        effective_at=None,
        category=Lot.Category.PAID,
        priority=0,
        actor=actor,
        memo="",
    )


def _add_lot(
    *, team, credits, key, kind, source, reference, expires_at, effective_at, category, priority, actor, memo
):
    expires_at = require_moment(expires_at, field="expires_at")
    effective_at = require_moment(effective_at, field="effective_at")
    if category not in Lot.Category.values:
        raise InvalidInput("Choose promotional or paid", field="category")
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
        raise InvalidInput("Priority is a whole number between -1000 and 1000", field="priority")
    if expires_at is not None and expires_at <= (effective_at or timezone.now()):
        raise InvalidInput("Choose an expiry after the credits become usable", field="expires_at")
    request = {
        "credits": credits,
        "category": category,
        "priority": priority,
        "reference": reference,
        "expires_at": as_json_moment(expires_at),
        "effective_at": as_json_moment(effective_at),
    }

    def body(book: Book) -> Outcome:
        lot = save_new(
            book,
            Lot(
                team_id=book.team_id,
                category=category,
                priority=priority,
                credits=credits,
                remaining=credits,
                effective_at=effective_at or book.now,
                expires_at=expires_at,
                key=key,
                reference=reference,
                memo=memo,
                actor=actor,
                created_at=book.now,
            ),
        )
        txn = post(
            book,
            kind=kind,
            legs={source: -credits, A.AVAILABLE: credits},
            key=key,
            lot=lot,
            reference=reference,
            memo=memo,
            actor=actor,
        )
        return Outcome(lot, transaction=txn, lot=lot)

    return run_operation(
        kind=kind,
        key=key,
        team_id=team.pk,
        request=request,
        returns="lot",
        body=body,
        new_ids=(Lot, Transaction),
    )


def ledger_adjust(
    *, team: Team, credits: int, key: str, actor: User, reason: str, corrects: Transaction | None = None
) -> Transaction:
    """Correct a team's available credits by hand (signed), saying who and why.

    A positive adjustment is a new promotional lot that never expires. A negative one takes free credits
    from the team's active lots in burn order and is refused if they do not have enough.
    """
    credits = require_credits(credits, signed=True)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why: an adjustment needs a reason", field="reason")
    if actor is None:
        raise InvalidInput("An adjustment needs the person who makes it", field="actor")
    if corrects is not None and corrects.team_id != team.pk:
        raise InvalidInput("An adjustment can only correct a transaction of the same team", field="corrects")
    request = {"credits": credits, "corrects": corrects.pk if corrects else None}

    def body(book: Book) -> Outcome:
        common = {"key": key, "memo": reason[:500], "actor": actor, "corrects": corrects}
        if credits > 0:
            lot = save_new(
                book,
                Lot(
                    team_id=book.team_id,
                    category=Lot.Category.PROMOTIONAL,
                    credits=credits,
                    remaining=credits,
                    effective_at=book.now,
                    key=key,
                    memo=reason[:500],
                    actor=actor,
                    created_at=book.now,
                ),
            )
            legs = {A.ADJUSTMENTS: -credits, A.AVAILABLE: credits}
            txn = post(book, kind=Transaction.Kind.ADJUST, legs=legs, lot=lot, **common)
            return Outcome(txn, transaction=txn, lot=lot)
        lots = sorted(
            Lot.objects.filter(team_id=book.team_id, status=Lot.Status.ACTIVE, remaining__gt=0),
            key=Lot.burn_key,
        )
        touched = []
        for lot, take in pick_from_lots(lots, -credits):
            lot.remaining -= take
            touched.append(lot)
        legs = {A.AVAILABLE: credits, A.ADJUSTMENTS: -credits}
        txn = post(book, kind=Transaction.Kind.ADJUST, legs=legs, **common)
        book.writes.update(touched, ("remaining",))
        return Outcome(txn, transaction=txn)

    return run_operation(
        kind=Transaction.Kind.ADJUST,
        key=key,
        team_id=team.pk,
        request=request,
        returns="transaction",
        body=body,
        new_ids=(Lot, Transaction),
    )


def ledger_expire_lots(*, now: datetime | None = None) -> int:
    """Expire every active lot whose expiry has come: its unreserved rest goes to breakage.

    Credits a hold reserved from the lot stay with the hold (a capture may still spend them); whatever the
    hold gives back later goes to breakage too. Returns how many lots expired. One team at a time, each
    under its own lock, so a sweep never blocks more than one team.
    """
    now = now or timezone.now()
    due = Lot.objects.filter(status=Lot.Status.ACTIVE, expires_at__lte=now)
    expired = 0
    for team_id, lot_id in due.order_by("team_id", "id").values_list("team_id", "id"):
        expired += _expire_lot(team_id=team_id, lot_id=lot_id, now=now)
    return expired


def _expire_lot(*, team_id: int, lot_id: int, now: datetime) -> int:
    key = f"expire:lot:{lot_id}"

    def body(book: Book) -> Outcome:
        lot = Lot.objects.get(pk=lot_id)
        if lot.status != Lot.Status.ACTIVE or lot.expires_at is None or lot.expires_at > now:
            return Outcome(0, lot=lot)
        broken = lot.free
        lot.remaining -= broken
        lot.status = Lot.Status.EXPIRED
        txn = None
        if broken:
            legs = {A.AVAILABLE: -broken, A.BREAKAGE: broken}
            txn = post(
                book, kind=Transaction.Kind.LOT_EXPIRE, legs=legs, key=key, lot=lot, reference=lot.reference
            )
        book.writes.update([lot], ("remaining", "status"))
        return Outcome(1, transaction=txn, lot=lot)

    result = run_operation(
        kind=Transaction.Kind.LOT_EXPIRE,
        key=key,
        team_id=team_id,
        request={"lot": lot_id},
        returns="none",
        body=body,
    )
    return result or 0
