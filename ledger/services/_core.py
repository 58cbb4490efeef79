"""What every ledger operation shares: input checks, the team lock, idempotency and posting.

An operation runs in one `transaction.atomic` block:

1. lock the team's two account rows (`available`, `held`) with SELECT ... FOR UPDATE, ordered by id.
   This is the team's only serialization point: every row an operation changes (lots, holds, allocations,
   balances) belongs to that team, so holding these two locks makes the operation exclusive without
   locking anything else, and one fixed order means two workers never deadlock;
2. look the idempotency key up: a known key replays its first outcome (or refuses a changed request),
   and read the rows the operation needs (its lots, its hold) as they are now that the lock is ours;
3. run the operation's body, which decides first (and may refuse) and only then queues its writes;
4. queue the outcome under the key, refusals included, and send the writes.

Bodies refuse before they write, so a refusal can be stored in the same transaction without a savepoint.
When the caller already holds a transaction (an approval calling `ledger_hold` inside its own atomic
block), the operation is a savepoint of it: its outcome, a stored refusal included, lasts only if the
caller commits.
Here, steps 1-2 are one round trip and step 4 another (see `_sql`), so an operation costs four round
trips with BEGIN and COMMIT. On PostgreSQL the hold operations (hold, capture, release, extend, close,
void, time-out) skip this path: each is one call of a database function doing the same four steps
(`_pg`, migration 0004), one round trip; tests/ledger/test_sql_parity.py keeps the two writing the same
rows. Grants, top-ups, adjustments, refunds and lot expiry run here on every database.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from ledger.errors import (
    STORED_REFUSALS,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidCredits,
    InvalidInput,
    LedgerError,
    refusal_from,
)
from ledger.models import Account, Entry, Hold, HoldLot, Lot, Operation, Transaction
from ledger.services._sql import Read, Writes, can_batch, insert_now, moment, next_id_sql, run, select

# No single operation moves more: ten million credits is $100,000 of top-ups. Bigger is a typo.
MAX_CREDITS = 10_000_000
MAX_KEY_LENGTH = 200
SYSTEM_KINDS = [kind for kind in Account.Kind if kind not in Account.TEAM_KINDS]


class LedgerBug(RuntimeError):
    """A rule the services guarantee was about to break: a programming error, never a user's."""


def require_credits(credits: Any, *, signed: bool = False) -> int:
    if isinstance(credits, bool) or not isinstance(credits, int):
        raise InvalidCredits("Enter a whole number of credits")
    if credits == 0:
        raise InvalidCredits(
            "Enter a number of credits other than zero" if signed else "Enter credits above zero"
        )
    if credits < 0 and not signed:
        raise InvalidCredits("Enter credits above zero")
    if abs(credits) > MAX_CREDITS:
        raise InvalidCredits(f"At most {MAX_CREDITS:,} credits at a time")
    return credits


def require_key(key: Any) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"An idempotency key is a non-empty string of at most {MAX_KEY_LENGTH} characters")
    return key


def require_moment(value: Any, *, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise InvalidInput("Give a date and time with a time zone", field=field)
    return value


def as_json_moment(value: datetime | None) -> str | None:
    """Requests are compared as JSON: the same instant must read the same whatever its time zone."""
    return value.astimezone(UTC).isoformat() if value is not None else None


# System accounts are never locked, so their ids can be remembered per database. They are created by
# migrate (and again after a test flush, which sends post_migrate); the cache is dropped each time.
_system_account_ids: dict[str, dict[str, int]] = {}


def ensure_system_accounts(*, using: str = "default", **kwargs) -> None:
    if Account._meta.db_table not in connections[using].introspection.table_names():
        return
    Account.objects.using(using).bulk_create(
        [Account(kind=kind) for kind in SYSTEM_KINDS], ignore_conflicts=True
    )
    _system_account_ids.pop(using, None)


def system_account_ids() -> dict[str, int]:
    using = connection.alias
    ids = _system_account_ids.get(using)
    if ids is None:
        rows = Account.objects.filter(team__isnull=True).values_list("kind", "id")
        ids = dict(rows)
        if len(ids) < len(SYSTEM_KINDS):
            ensure_system_accounts(using=using)
            ids = dict(rows.all())
        _system_account_ids[using] = ids
    return ids


@dataclass
class Book:
    """One operation's view of its team: the locked accounts, the rows it asked for, the writes it queues."""

    team_id: int
    available: Account
    held: Account
    now: datetime
    writes: Writes
    fetched: dict[str, list] = field(default_factory=dict)
    new_ids: dict[type, int] = field(default_factory=dict)

    def account(self, kind: str) -> Account:
        return self.available if kind == Account.Kind.AVAILABLE else self.held


_KEY_SQL = "SELECT id FROM ledger_operation WHERE key = %s"


def open_book(
    team_id: int, key: str, *, reads: Callable[[datetime], dict[str, Read]] | None, new_ids: tuple
) -> tuple[Book, int | None]:
    """Lock the team's accounts, in id order, then read the key and the rows the operation needs.

    Everything after the lock is read in statements of their own, so it sees what the operation that
    held the lock before us committed (READ COMMITTED takes a snapshot per statement). Returns the book
    and the id of the key's outcome, if the key was used before.
    """
    now = timezone.now()
    lock_sql = "SELECT id, kind, balance FROM ledger_account WHERE team_id = %s ORDER BY id"
    if connection.features.has_select_for_update:
        lock_sql += " FOR UPDATE"
    wanted = reads(now) if reads else {}
    statements = [
        (lock_sql, [team_id]),
        (_KEY_SQL, [key]),
        *((read.sql, read.params) for read in wanted.values()),
    ]
    if can_batch():
        statements += [(next_id_sql(model), []) for model in new_ids]
    results = run(statements)
    if len(results[0]) < 2:
        # A team's first operation opens its accounts; a concurrent first operation inserts nothing.
        Account.objects.bulk_create(
            [Account(team_id=team_id, kind=kind) for kind in Account.TEAM_KINDS], ignore_conflicts=True
        )
        results = run(statements)
    accounts = {}
    for account_id, kind, balance in results[0]:
        accounts[kind] = Account.from_db(
            connection.alias, ["id", "team_id", "kind", "balance"], [account_id, team_id, kind, balance]
        )
    fetched = {name: read.rows(rows) for (name, read), rows in zip(wanted.items(), results[2:], strict=False)}
    drawn = results[2 + len(wanted) :]
    book = Book(
        team_id=team_id,
        available=accounts[Account.Kind.AVAILABLE],
        held=accounts[Account.Kind.HELD],
        now=now,
        writes=Writes(),
        fetched=fetched,
        new_ids={model: rows[0][0] for model, rows in zip(new_ids, drawn, strict=False)},
    )
    return book, results[1][0][0] if results[1] else None


def save_new(book: Book, row):
    """Insert a new row: queued with the id drawn for it when there is one, else right away."""
    pk = book.new_ids.pop(type(row), None)
    if pk is None:
        return insert_now(row)
    row.pk = pk
    row._state.adding = False
    book.writes.insert([row], with_pk=True)
    return row


@dataclass
class Outcome:
    """What an operation's body did: the value to return, and the rows its key should point at."""

    value: Any
    transaction: Transaction | None = None
    hold: Hold | None = None
    lot: Lot | None = None


def run_operation(
    *,
    kind: str,
    key: str,
    team_id: int,
    request: dict,
    returns: str,
    body: Callable[[Book], Outcome],
    reads: Callable[[datetime], dict[str, Read]] | None = None,
    new_ids: tuple = (Transaction,),
) -> Any:
    """Run `body` once per key under the team lock; a retry gets the first outcome (see module doc).

    `reads(now)` names the rows the body needs (they are read right after the lock, in the same round
    trip, into `book.fetched`); `new_ids` the models it will insert a row of.
    """
    require_key(key)
    owns_transaction = not connection.in_atomic_block
    options = {"kind": kind, "key": key, "team_id": team_id, "request": request, "returns": returns}
    try:
        return _run_once(**options, body=body, reads=reads, new_ids=new_ids)
    except IntegrityError:
        if not owns_transaction:
            raise
        # Two teams raced for one key (they do not share a lock): the loser looks again and is refused.
        return _run_once(**options, body=body, reads=reads, new_ids=new_ids)


def _run_once(*, kind, key, team_id, request, returns, body, reads, new_ids) -> Any:
    refusal = None
    with transaction.atomic():
        book, first_id = open_book(team_id, key, reads=reads, new_ids=new_ids)
        if first_id is not None:
            first = Operation.objects.get(pk=first_id)
            return _replay(first, kind=kind, team_id=team_id, request=request, returns=returns)
        record = Operation(key=key, kind=kind, team_id=team_id, request=request, created_at=book.now)
        try:
            outcome = body(book)
        except LedgerError as error:
            if error.code not in STORED_REFUSALS:
                raise
            record.outcome = Operation.Outcome.REFUSED
            record.error_code, record.error_message = error.code, error.message
            record.error_details = error.details
            refusal = error
        else:
            record.outcome = Operation.Outcome.DONE
            record.transaction, record.hold, record.lot = outcome.transaction, outcome.hold, outcome.lot
        book.writes.insert([record])
        book.writes.flush()
    # Raised after the block, so the refusal is committed with its key rather than rolled back.
    if refusal is not None:
        raise refusal
    return outcome.value


def _replay(first: Operation, *, kind: str, team_id: int, request: dict, returns: str) -> Any:
    if first.kind != kind or first.team_id != team_id or first.request != request:
        raise IdempotencyConflict(key=first.key)
    if first.outcome == Operation.Outcome.REFUSED:
        raise refusal_from(first.error_code, first.error_details)
    if returns == "transaction":
        return Transaction.objects.get(pk=first.transaction_id)
    if returns == "hold":
        return Hold.objects.get(pk=first.hold_id)
    if returns == "lot":
        return Lot.objects.get(pk=first.lot_id)
    return None


def post(book: Book, *, kind: str, legs: dict[str, int], key: str, **fields) -> Transaction:
    """Write one balanced transaction. `legs` maps account kinds to signed credits (zero legs dropped)."""
    legs = {account_kind: credits for account_kind, credits in legs.items() if credits}
    if len(legs) < 2 or sum(legs.values()) != 0:
        raise LedgerBug(f"Unbalanced posting {kind}: {legs}")
    txn = save_new(book, Transaction(team_id=book.team_id, kind=kind, key=key, created_at=book.now, **fields))
    system_ids = None
    entries, changed = [], []
    for account_kind, credits in legs.items():
        if account_kind in Account.TEAM_KINDS:
            account = book.account(account_kind)
            account.balance += credits
            if account.balance < 0:
                raise LedgerBug(f"{kind} would take team {book.team_id}'s {account_kind} below zero")
            entries.append(
                Entry(transaction=txn, account=account, credits=credits, balance_after=account.balance)
            )
            changed.append(account)
        else:
            system_ids = system_ids or system_account_ids()
            entries.append(Entry(transaction=txn, account_id=system_ids[account_kind], credits=credits))
    book.writes.insert(entries)
    book.writes.update(changed, ("balance",))
    return txn


def spendable_lots_read(team_id: int, now: datetime) -> Read:
    """Lots a new hold may draw from: active, effective, unexpired, with free credits."""
    return select(
        Lot,
        where="team_id = %s AND status = %s AND remaining > reserved AND effective_at <= %s "
        "AND (expires_at IS NULL OR expires_at > %s)",
        params=[team_id, Lot.Status.ACTIVE, moment(now), moment(now)],
    )


def spendable_lots(book: Book) -> list[Lot]:
    """The lots read for this operation, in burn order."""
    return sorted(book.fetched["lots"], key=Lot.burn_key)


def pick_from_lots(lots: list[Lot], credits: int) -> list[tuple[Lot, int]]:
    """Take `credits` of free credits from `lots` in the order given, or refuse with what there is."""
    picks, needed = [], credits
    for lot in lots:
        take = min(lot.free, needed)
        if take > 0:
            picks.append((lot, take))
            needed -= take
        if needed == 0:
            return picks
    raise InsufficientCredits(available=sum(lot.free for lot in lots), needed=credits)


def hold_reads(hold_id: int) -> dict[str, Read]:
    """The hold and its allocations with their lots, to be read under the team lock."""
    return {
        "hold": select(Hold, where="id = %s", params=[hold_id]),
        "allocations": select(
            HoldLot,
            Lot,
            join="JOIN ledger_lot ON ledger_lot.id = ledger_holdlot.lot_id",
            where="ledger_holdlot.hold_id = %s",
            params=[hold_id],
            order_by="ledger_holdlot.id",
        ),
    }


def load_hold(book: Book) -> tuple[Hold, list[HoldLot]]:
    """The hold as committed when the lock was granted, with its allocations and their lots."""
    hold = book.fetched["hold"][0]
    allocations = []
    for allocation, lot in book.fetched["allocations"]:
        allocation.hold, allocation.lot = hold, lot
        allocations.append(allocation)
    return hold, allocations


# What an operation on a hold may change: what a caller's copy of the hold is brought up to date on.
HOLD_STATE = ("credits", "captured", "released", "refunded", "status", "resolved_at")


def refresh_caller_hold(stale: Hold, fresh: Hold) -> None:
    """Callers keep using their Hold object: bring it up to date without another query."""
    if stale is not fresh:
        for field in HOLD_STATE:
            setattr(stale, field, getattr(fresh, field))
