"""The hold operations on PostgreSQL: one call of the function migration 0004 installs, one round trip.

The functions do what the Python bodies in `holds` do, step for step (lock, key, read, decide, write,
record); tests/ledger/test_sql_parity.py holds the two to identical rows. Here is only the calling:
the arguments in, the outcome out as the services return it (a Hold, a Transaction, or the refusal).
"""

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import IntegrityError, connection
from django.utils import timezone

from keter.sql import loaded, prepared
from ledger.errors import IdempotencyConflict, LedgerError, refusal_from
from ledger.models import Hold, Transaction
from ledger.services._core import HOLD_STATE, require_key

_local = threading.local()


def enabled() -> bool:
    """Whether the hold operations run as database functions here (PostgreSQL, unless a test asks for
    the Python bodies to compare them)."""
    return connection.vendor == "postgresql" and not getattr(_local, "python_bodies", False)


@contextmanager
def python_bodies():
    """Run the Python bodies on PostgreSQL too, in this thread (the parity tests compare both)."""
    _local.python_bodies = True
    try:
        yield
    finally:
        _local.python_bodies = False


class Result(NamedTuple):  # a tuple: built once per operation, from the function's row
    status: str
    replayed: bool
    transaction_id: int | None
    hold_id: int | None
    error_code: str | None
    error_details: dict | None
    hold_credits: int | None
    hold_captured: int | None
    hold_released: int | None
    hold_refunded: int | None
    hold_status: str | None
    hold_resolved_at: datetime | None


def _result(row) -> Result:
    details = row[5]
    if isinstance(details, str):
        details = json.loads(details)
    return Result(*row[:5], details, *row[6:])


def _call(sql: str, params: list) -> Result:
    """One statement. Outside a transaction it is its own (the deferred triggers judge it as it ends);
    inside the caller's, an error marks that transaction for rollback, as a failed write would."""
    try:
        (row,) = prepared(sql, params)
    except IntegrityError:
        if connection.in_atomic_block:
            raise  # the caller's transaction is lost with it
        # Two teams raced for one key (they do not share a lock): the loser looks again, is refused.
        (row,) = prepared(sql, params)
    return _result(row)


def _settle(result: Result, key: str) -> Result:
    if result.status == "conflict":
        raise IdempotencyConflict(key=key)
    if result.status == "refused":
        raise refusal_from(result.error_code, result.error_details)
    return result


_HOLD_SQL = "SELECT * FROM ledger_hold_op(%s, %s, %s::jsonb, %s, %s, %s, %s)"
_STEP_SQL = "SELECT * FROM ledger_hold_step(%s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
_STEPS_ARGS = (
    "(%s, %s, %s::text[], %s::bigint[], %s::text[], %s::jsonb[], %s::bigint[], %s::text[], %s::int[])"
)
_STEPS_SQL = f"SELECT * FROM ledger_hold_steps{_STEPS_ARGS}"
# The same steps when they are a split's (release from one hold, then a new hold, part after part): one
# pass over all parts where that writes what the steps one by one would (migration 0008), else the steps.
_SPLIT_SQL = f"SELECT * FROM ledger_hold_split{_STEPS_ARGS}"
# The same steps when they settle holds (capture and close, or void and extend another hold by as many,
# per hold): fewer statements where that writes what the steps would (migration 0009), else the steps.
SETTLE_SQL = f"SELECT * FROM ledger_hold_settle{_STEPS_ARGS}"
# The same, failing as a whole when an operation would not be done (migration 0010).
SETTLE_ALL_SQL = f"SELECT * FROM ledger_hold_settle_all{_STEPS_ARGS}"


def _new_hold(*, hold_id: int, team_id: int, credits: int, reference: str, key: str, expires_at, now) -> Hold:
    """The hold just written, as the ORM would load it (the columns the function wrote, no query)."""
    return loaded(
        Hold,
        id=hold_id,
        team_id=team_id,
        credits=credits,
        captured=0,
        released=0,
        refunded=0,
        status=Hold.Status.PENDING,
        reference=reference,
        key=key,
        expires_at=expires_at,
        created_at=now,
        resolved_at=None,
    )


def hold(*, team_id: int, key: str, request: dict, credits: int, reference: str, expires_at) -> Hold:
    require_key(key)
    now = timezone.now()
    params = [team_id, key, json.dumps(request), now, credits, reference, expires_at]
    result = _settle(_call(_HOLD_SQL, params), key)
    if result.replayed:
        return Hold.objects.get(pk=result.hold_id)
    return _new_hold(
        hold_id=result.hold_id,
        team_id=team_id,
        credits=credits,
        reference=reference,
        key=key,
        expires_at=expires_at,
        now=now,
    )


@dataclass(frozen=True)
class Step:
    """One operation of a sequence: `kind` a Transaction.Kind of a hold operation, `hold` None for a new
    hold, `request` as the single operation would record it (so a retry either way replays it)."""

    kind: str
    hold: Hold | None
    key: str
    request: dict
    credits: int | None = None
    reference: str = ""
    group: int = 0  # a refusal skips the rest of its group


def hold_step(
    *, kind: str, hold: Hold, key: str, request: dict, credits: int | None, reference: str, returns
):
    """capture, release, hold_extend, hold_close, hold_void or hold_expire on `hold`; the caller's copy
    of the hold is brought up to date, refused or not."""
    require_key(key)
    now = timezone.now()
    params = [kind, hold.team_id, hold.pk, key, json.dumps(request), now, credits, reference]
    step = Step(kind, hold, key, request, credits, reference)
    return _finish(step, _call(_STEP_SQL, params), now, returns)


def steps(*, team_id: int, steps: list[Step], split: bool = False) -> list:
    """Run the steps in order in one round trip, as the single operations would run one after the other:
    the first refusal stops the sequence and is raised (the steps before it stay done, the refusal is
    recorded under its key). Returns what each operation returns (a Hold, or a Transaction or None).
    `split`: the steps are a hold's split (release, hold; part after part), which may run in one pass."""
    outcomes = run_steps(team_id=team_id, steps=steps, sql=_SPLIT_SQL if split else _STEPS_SQL)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes


SKIPPED = object()


def run_steps(*, team_id: int, steps: list[Step], sql: str = _STEPS_SQL) -> list:
    """Like `steps`, with groups: a refusal skips the rest of its group only. Returns, per step, what the
    operation returns, or its refusal (not raised), or SKIPPED."""
    sql, params, outcomes = steps_call(team_id=team_id, steps=steps, sql=sql)
    return outcomes(prepared(sql, params))


def steps_call(*, team_id: int, steps: list[Step], sql: str = _STEPS_SQL):
    """`run_steps` as a statement for the caller to send: (sql, params, what its rows mean)."""
    for step in steps:
        require_key(step.key)
    now = timezone.now()
    params = [
        team_id,
        now,
        [step.kind for step in steps],
        [step.hold.pk if step.hold is not None else None for step in steps],
        [step.key for step in steps],
        [json.dumps(step.request) for step in steps],
        [step.credits for step in steps],
        [step.reference for step in steps],
        [step.group for step in steps],
    ]

    def outcomes(rows) -> list:
        found = []
        for step, row in zip(steps, rows, strict=True):
            if row[0] == "skipped":
                found.append(SKIPPED)
                continue
            result = _result(row)
            try:
                found.append(_value(step, result, team_id, now))
            except LedgerError as refusal:
                found.append(refusal)
        return found

    return sql, params, outcomes


def _value(step: Step, result: Result, team_id: int, now):
    if step.kind != "hold":
        returns = "transaction" if step.kind in ("capture", "release") else "hold"
        return _finish(step, result, now, returns)
    _settle(result, step.key)
    if result.replayed:
        return Hold.objects.get(pk=result.hold_id)
    return _new_hold(
        hold_id=result.hold_id,
        team_id=team_id,
        credits=step.credits,
        reference=step.reference,
        key=step.key,
        expires_at=None,
        now=now,
    )


def _finish(step: Step, result: Result, now, returns):
    hold = step.hold
    if result.replayed:
        hold.refresh_from_db(fields=HOLD_STATE)
    elif result.hold_status is not None:
        hold.credits, hold.captured = result.hold_credits, result.hold_captured
        hold.released, hold.refunded = result.hold_released, result.hold_refunded
        hold.status, hold.resolved_at = result.hold_status, result.hold_resolved_at
    _settle(result, step.key)
    if returns == "hold":
        return hold
    if result.replayed:
        return Transaction.objects.get(pk=result.transaction_id)
    return loaded(
        Transaction,
        id=result.transaction_id,
        team_id=hold.team_id,
        kind=step.kind,
        key=step.key,
        reference=step.reference,
        memo="",
        actor_id=None,
        hold_id=hold.pk,
        lot_id=None,
        corrects_id=None,
        created_at=now,
    )
