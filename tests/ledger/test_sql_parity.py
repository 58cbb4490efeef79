"""On PostgreSQL the hold operations run as database functions (migration 0004); the Python bodies are
what SQLite runs. Both must write the same ledger: the same random workloads go through each, on two
teams that start alike, and every row they leave behind must be the same (ids aside).

This is what keeps the two from drifting: a rule changed on one side only fails here.
"""

import random
import re
from collections import Counter
from datetime import timedelta

import pytest

from keter.accounts.models import Team
from ledger.checks import ledger_check
from ledger.errors import LedgerError
from ledger.models import Entry, Hold, HoldLot, Lot, Operation, Transaction
from ledger.services import (
    CaptureAndClose,
    HoldPart,
    VoidInto,
    _pg,
    ledger_capture,
    ledger_close_hold,
    ledger_expire_holds,
    ledger_expire_lots,
    ledger_grant,
    ledger_hold,
    ledger_hold_extend,
    ledger_hold_split,
    ledger_refund,
    ledger_release,
    ledger_resolve_holds,
    ledger_top_up,
    ledger_void_hold,
)

pytestmark = pytest.mark.postgres


STEPS = 200
# Every kind of operation the workload runs (a retry replays one of them).
OPERATIONS = ("hold", "capture", "release", "extend", "close", "void", "refund", "settle", "split")


def workload(team: Team, seed: int, clock) -> list[str]:
    """A random mix of every hold operation, retries and refusals included; returns what each step did."""
    rng = random.Random(seed)
    start = clock.now
    ledger_grant(team=team, credits=300, key=f"{team.slug}:grant:soon", expires_at=start + timedelta(days=2))
    ledger_grant(team=team, credits=200, key=f"{team.slug}:grant:first", priority=-1)
    ledger_top_up(team=team, credits=1000, key=f"{team.slug}:top-up")
    holds: list[Hold] = []
    seen: list[str] = []
    for n in range(STEPS):
        clock.advance(minutes=7)
        key = f"{team.slug}:{n}"
        credits = rng.choice([1, 5, 20, 80, 150, 400])
        action = rng.choice(["hold", *OPERATIONS, "retry"])  # a hold twice as often: the others need one
        # Mostly a hold the action can work on (open; for a refund, with captured credits), so that most
        # operations are carried out; now and then any hold, so that refusals are compared too.
        workable = [
            h
            for h in holds
            if (h.captured > h.refunded if action == "refund" else h.status == Hold.Status.PENDING)
        ]
        hold = rng.choice(workable if workable and rng.random() < 0.85 else holds) if holds else None
        # Within what the hold keeps, mostly (a split also moves 3 more).
        room = hold.open_credits - (3 if action == "split" else 0) if hold in workable else 0
        if action in ("capture", "release", "settle", "split") and room > 0 and rng.random() < 0.7:
            credits = rng.randint(1, room)
        if n == STEPS // 2:
            clock.advance(days=3)  # the soonest lot expires: later give-backs to it are breakage
            ledger_expire_lots()
            action = "expire-holds"
        try:
            if action == "hold" or hold is None:
                expires = clock.now + timedelta(hours=rng.choice([1, 48])) if rng.random() < 0.3 else None
                holds.append(
                    ledger_hold(team=team, credits=credits, key=key, reference=f"r{n}", expires_at=expires)
                )
            elif action == "capture":
                ledger_capture(hold=hold, credits=credits, key=key, reference=f"c{n}")
            elif action == "release":
                ledger_release(hold=hold, credits=credits, key=key, reference=f"l{n}")
            elif action == "extend":
                ledger_hold_extend(hold=hold, credits=credits, key=key)
            elif action == "close":
                ledger_close_hold(hold=hold, key=key)
            elif action == "void":
                ledger_void_hold(hold=hold, key=key)
            elif action == "refund":
                ledger_refund(hold=hold, credits=credits, key=key, reference=f"f{n}")
            elif action == "retry":  # the same key again: same input, then changed input
                retried = f"{team.slug}:{rng.randrange(max(n, 1))}"
                ledger_capture(hold=hold, credits=credits, key=retried, reference="again")
            elif action == "settle":
                other = rng.choice(workable or holds)
                into = workable[0] if workable else holds[0]
                resolutions = [
                    CaptureAndClose(
                        hold=hold, credits=credits, key=key, close_key=f"{key}:close", reference="s"
                    ),
                    VoidInto(
                        hold=other, key=f"{key}:void", into=into, into_key=f"{key}:into", credits=credits
                    ),
                ]
                ledger_resolve_holds(resolutions=resolutions)
            elif action == "split":
                parts = [
                    HoldPart(credits=c, release_key=f"{key}:r{i}", key=f"{key}:h{i}", reference=f"p{i}")
                    for i, c in enumerate([credits, 3])
                ]
                holds += ledger_hold_split(hold=hold, parts=parts)
            elif action == "expire-holds":
                ledger_expire_holds()
            seen.append(f"{n} {action}: done")
        except LedgerError as refusal:
            numbers = {k: v for k, v in refusal.details.items() if k not in ("hold_id", "key")}
            seen.append(f"{n} {action}: {refusal.code} {numbers}")
    return seen


def snapshot(team: Team) -> dict:
    """Every row the team's ledger has, ids replaced by their rank within the team."""
    holds = {
        pk: i
        for i, pk in enumerate(Hold.objects.filter(team=team).order_by("id").values_list("id", flat=True))
    }
    lots = {
        pk: i
        for i, pk in enumerate(Lot.objects.filter(team=team).order_by("id").values_list("id", flat=True))
    }
    prefix = f"{team.slug}:"

    def key(value: str) -> str:
        # Keys the ledger derives itself carry ids: expire:lot:<id>, expire:hold:<id>.
        value = re.sub(r"^expire:lot:(\d+)$", lambda m: f"expire:lot:#{lots[int(m.group(1))]}", value)
        value = re.sub(r"^expire:hold:(\d+)$", lambda m: f"expire:hold:#{holds[int(m.group(1))]}", value)
        return value.removeprefix(prefix)

    def details(data: dict) -> dict:
        return {k: holds.get(v) if k == "hold_id" else v for k, v in data.items()}

    def request(data: dict) -> dict:
        ranks = {"hold": holds, "lot": lots}
        return {k: ranks[k].get(v) if k in ranks else v for k, v in data.items()}

    def message(text: str) -> str:
        return re.sub(r"#(\d+)", lambda m: f"#{holds.get(int(m.group(1)))}", text)

    transactions = []
    for txn in Transaction.objects.filter(team=team).order_by("id").prefetch_related("entries__account"):
        legs = sorted((e.account.kind, e.credits, e.balance_after) for e in txn.entries.all())
        transactions.append(
            (txn.kind, key(txn.key), txn.reference, holds.get(txn.hold_id), txn.created_at, legs)
        )
    return {
        "holds": [
            (
                key(h.key),
                h.credits,
                h.captured,
                h.released,
                h.refunded,
                h.status,
                h.reference,
                h.expires_at,
                h.created_at,
                h.resolved_at,
            )
            for h in Hold.objects.filter(team=team).order_by("id")
        ],
        "allocations": sorted(
            (holds[a.hold_id], lots[a.lot_id], a.reserved, a.captured, a.released, a.refunded)
            for a in HoldLot.objects.filter(hold__team=team)
        ),
        "lots": [
            (lot.remaining, lot.reserved, lot.status) for lot in Lot.objects.filter(team=team).order_by("id")
        ],
        "transactions": transactions,
        "operations": [
            (
                key(o.key),
                o.kind,
                o.outcome,
                request(o.request),
                o.error_code,
                message(o.error_message),
                details(o.error_details),
                holds.get(o.hold_id),
                o.created_at,
            )
            for o in Operation.objects.filter(team=team).order_by("id")
        ],
        "balances": sorted(
            Entry.objects.filter(transaction__team=team, account__team=team)
            .order_by("account__kind", "-id")
            .distinct("account__kind")
            .values_list("account__kind", "balance_after")
        ),
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_the_database_functions_write_what_the_python_bodies_write(seed, team, clock):
    twin = Team.objects.create(name="Twin Films", slug="twin", plan=team.plan)
    start = clock.now
    with _pg.python_bodies():
        by_python = workload(team, seed, clock)
    clock.set(start)
    by_database = workload(twin, seed, clock)

    assert by_database == by_python
    done = Counter(line.split()[1].rstrip(":") for line in by_python if line.endswith(": done"))
    # The workload carries out every kind of operation, not only refusals.
    assert set(done) >= set(OPERATIONS), done
    python_rows, database_rows = snapshot(team), snapshot(twin)
    for table in python_rows:
        assert database_rows[table] == python_rows[table], table
    assert ledger_check().ok


def split_workload(team: Team, lots: list[dict], budget: int, parts: list[int], again: bool) -> list:
    """A budget held from these lots (those marked `later` come after it), split into parts (then, if
    `again`, the same split retried)."""
    for later in (False, True):
        for n, options in enumerate(lots):
            if options.get("later", False) == later:
                grant = {name: value for name, value in options.items() if name != "later"}
                ledger_grant(team=team, key=f"{team.slug}:grant:{n}", **grant)
        if not later:
            hold = ledger_hold(team=team, credits=budget, key=f"{team.slug}:budget", reference="project:1")
    split = [
        HoldPart(credits=c, release_key=f"{team.slug}:r{i}", key=f"{team.slug}:h{i}", reference=f"job:{i}")
        for i, c in enumerate(parts)
    ]
    outcomes = []
    for _ in range(2 if again else 1):
        try:
            outcomes.append(
                [(h.credits, h.reference, h.status) for h in ledger_hold_split(hold=hold, parts=split)]
            )
        except LedgerError as refusal:
            outcomes.append(refusal.code)
    return outcomes


def single_step_calls() -> int:
    """How many hold operations ran one by one in this transaction (PostgreSQL's function statistics)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions "
            "WHERE funcname IN ('ledger_hold_step', 'ledger_hold_op')"
        )
        return cursor.fetchone()[0]


SPLITS = {
    # One lot: the split runs in one pass.
    "one lot": ([{"credits": 5_000}], 3_000, [40] * 50, False, True),
    "one lot, retried": ([{"credits": 500}], 300, [40, 60, 7], True, True),
    # More than the budget keeps: refused at the part that does not fit, the parts before it done.
    "too much": ([{"credits": 500}], 300, [200, 90, 50], False, False),
    # Another lot burns first, or the budget spans two lots: the operations one by one.
    "a lot burns first": (
        [{"credits": 500}, {"credits": 100, "priority": -1, "later": True}],
        300,
        [40, 60],
        False,
        False,
    ),
    "budget over two lots": (
        [{"credits": 100, "priority": -1}, {"credits": 500}],
        300,
        [40, 60],
        False,
        False,
    ),
}


@pytest.mark.parametrize("case", SPLITS)
def test_a_split_in_one_pass_writes_what_the_operations_one_by_one_write(case, team, clock):
    from django.db import connection

    lots, budget, credits, again, one_pass = SPLITS[case]
    twin = Team.objects.create(name="Twin Films", slug="twin", plan=team.plan)
    with _pg.python_bodies():
        by_python = split_workload(team, lots, budget, credits, again)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL track_functions = 'pl'")
    before = single_step_calls()
    by_database = split_workload(twin, lots, budget, credits, again)

    assert by_database == by_python
    python_rows, database_rows = snapshot(team), snapshot(twin)
    for table in python_rows:
        assert database_rows[table] == python_rows[table], table
    # The one-pass path ran where it can (a retry replays through the operations one by one).
    ran_one_by_one = single_step_calls() - before
    if one_pass and not again:
        assert ran_one_by_one == 1  # the budget's own hold
    else:
        assert ran_one_by_one > 1
    assert ledger_check().ok


def settle_setup(team: Team, case: dict) -> list:
    """A budget split into takes, and how each take settles (as a finished take's resolution)."""
    for n, options in enumerate(case.get("lots", [{"credits": 5_000}])):
        ledger_grant(team=team, key=f"{team.slug}:grant:{n}", **options)
    budget = ledger_hold(team=team, credits=1_000, key=f"{team.slug}:budget", reference="project:1")
    other = ledger_hold(team=team, credits=300, key=f"{team.slug}:other", reference="project:2")
    parts = [
        HoldPart(
            credits=10 + i, release_key=f"{team.slug}:r{i}", key=f"{team.slug}:h{i}", reference=f"job:{i}"
        )
        for i in range(len(case["takes"]))
    ]
    takes = ledger_hold_split(hold=budget, parts=parts)
    for n, options in enumerate(case.get("later_lots", [])):
        ledger_grant(team=team, key=f"{team.slug}:later:{n}", **options)
    if case.get("close_other"):
        ledger_void_hold(hold=other, key=f"{team.slug}:other:void")
    resolutions = []
    for i, (take, outcome) in enumerate(zip(takes, case["takes"], strict=True)):
        key = f"{team.slug}:t{i}"
        if outcome == "capture":
            credits = take.credits - case.get("short", 0)
            resolutions.append(
                CaptureAndClose(
                    hold=take, credits=credits, key=key, close_key=f"{key}:close", reference=f"job:{i}"
                )
            )
        else:
            into = other if outcome == "void-other" else budget
            resolutions.append(
                VoidInto(
                    hold=take, key=f"{key}:void", into=into, into_key=f"{key}:into", credits=take.credits
                )
            )
    return resolutions


def settle(resolutions: list, times: int) -> list:
    seen = []
    for _ in range(times):
        try:
            results = ledger_resolve_holds(resolutions=resolutions)
            seen.append(
                [(r.kind, r.key.split(":", 1)[1]) if isinstance(r, Transaction) else r for r in results]
            )
        except LedgerError as refusal:
            seen.append(refusal.code)
    return seen


MIXED = ["capture", "void", "void", "capture", "void-other", "capture", "void"]
SETTLES = {
    # One lot, every hold keeping what is settled: the batch at once, captures and voids mixed, two
    # budgets.
    "mixed": ({"takes": MIXED}, True),
    "captures only": ({"takes": ["capture"] * 4}, True),
    "voids only": ({"takes": ["void"] * 3}, True),
    # The same again: replayed through the operations one by one.
    "retried": ({"takes": MIXED, "times": 2}, False),
    # A budget closed meanwhile: its extension is refused, the credits stay with the team.
    "a budget closed": ({"takes": MIXED, "close_other": True}, False),
    # A capture of less than the hold keeps, a lot that now burns first: the operations one by one.
    "short capture": ({"takes": ["capture", "void"], "short": 3}, False),
    "a lot burns first": (
        {"takes": ["capture", "void"], "later_lots": [{"credits": 50, "priority": -1}]},
        False,
    ),
    # Nothing goes back to a budget: which lot burns first does not matter.
    "captures, a lot burns first": (
        {"takes": ["capture", "capture"], "later_lots": [{"credits": 50, "priority": -1}]},
        True,
    ),
}


@pytest.mark.parametrize("case", SETTLES)
def test_settling_a_batch_at_once_writes_what_the_operations_one_by_one_write(case, team, clock):
    from django.db import connection

    spec, at_once = SETTLES[case]
    twin = Team.objects.create(name="Twin Films", slug="twin", plan=team.plan)
    with _pg.python_bodies():
        by_python = settle(settle_setup(team, spec), spec.get("times", 1))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL track_functions = 'pl'")
    resolutions = settle_setup(twin, spec)
    before = single_step_calls()
    by_database = settle(resolutions, spec.get("times", 1))

    assert by_database == by_python
    python_rows, database_rows = snapshot(team), snapshot(twin)
    for table in python_rows:
        assert database_rows[table] == python_rows[table], table
    assert (single_step_calls() == before) == at_once
    assert ledger_check().ok
