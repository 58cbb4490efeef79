"""Real concurrency on PostgreSQL: worker threads, each with its own connection, racing on one team."""

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from keter.accounts.models import Team
from ledger.checks import ledger_check
from ledger.errors import HoldAlreadyResolved, IdempotencyConflict, InsufficientCredits
from ledger.models import Account, Entry, Hold, Operation
from ledger.services import (
    ledger_capture,
    ledger_close_hold,
    ledger_expire_holds,
    ledger_grant,
    ledger_hold,
    ledger_top_up,
    ledger_void_hold,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8


def race(work, workers: int = WORKERS, timeout: float = 120) -> list:
    """Run work(i) in `workers` threads started together; return what each returned. A thread still
    running after `timeout` seconds would be a deadlock (PostgreSQL would also report one as an error)."""
    start = threading.Barrier(workers)
    results, errors = [None] * workers, []

    def run(i):
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as error:  # raised again below, in the test's thread
            errors.append(error)
        finally:
            connection.close()  # each thread has its own connection; leave none behind

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker is stuck: deadlock?"
    if errors:
        raise errors[0]
    return results


def ledger_total(team) -> dict:
    sums = dict(
        Entry.objects.filter(transaction__team=team)
        .values_list("account__kind")
        .annotate(total=Sum("credits"))
    )
    return {kind: sums.get(kind, 0) for kind in ("available", "held", "usage", "breakage")}


def test_racing_holds_captures_and_resolutions_with_retried_keys_stay_consistent(team):
    ledger_grant(team=team, credits=2_000, key="race:grant")
    ledger_top_up(team=team, credits=1_000, key="race:top-up")
    jobs = range(40)
    soon = timezone.now() + timedelta(hours=1)

    def hold_credits(job: int) -> int:
        return 300 + 20 * job  # a few at once are more than the team has: some holds must be refused

    def work(worker: int) -> Counter:
        seen = Counter()
        rng = random.Random(worker)
        for job in rng.sample(list(jobs), len(jobs)):  # every worker does every job, in its own order
            try:
                held = ledger_hold(
                    team=team,
                    credits=hold_credits(job),
                    key=f"hold:race:{job}",
                    reference=f"r:{job}",
                    expires_at=soon,
                )
            except InsufficientCredits:
                seen["refused hold"] += 1
                continue
            try:
                ledger_capture(
                    hold=held,
                    credits=hold_credits(job) // 2,
                    key=f"capture:race:{job}",
                    reference=f"job:{job}",
                )
                resolve = ledger_void_hold if rng.random() < 0.5 else ledger_close_hold
                resolve(hold=held, key=f"{resolve.__name__}:race:{job}")
                seen["resolved"] += 1
            except HoldAlreadyResolved:
                seen["already resolved"] += 1
            if worker == 0 and job % 10 == 0:
                ledger_expire_holds(now=soon + timedelta(minutes=1))  # the sweep races too
        return seen

    outcomes = sum(race(work), Counter())
    assert outcomes["already resolved"] > 0 and outcomes["refused hold"] > 0  # the race really happened

    totals = ledger_total(team)
    assert sum(totals.values()) == 3_000  # nothing lost, nothing created
    assert totals["held"] == 0  # every hold resolved: none left open
    available = Account.objects.get(team=team, kind="available").balance
    assert available == totals["available"] >= 0
    captured = Hold.objects.filter(team=team).aggregate(total=Sum("captured"))["total"]
    assert captured == totals["usage"]
    for hold in Hold.objects.filter(team=team):
        assert hold.status in {"posted", "voided", "expired"}
        assert hold.captured <= hold.credits // 2  # one capture per key, never two
        resolutions = Operation.objects.filter(
            hold=hold, outcome="done", kind__in=["hold_close", "hold_void", "hold_expire"]
        )
        assert resolutions.count() == 1  # resolved once
    report = ledger_check()
    assert report.ok, report.violations


def test_the_same_key_sent_by_every_worker_at_once_acts_once(team):
    ledger_grant(team=team, credits=1_000, key="same:grant")
    holds = race(
        lambda i: ledger_hold(team=team, credits=300, key="hold:approval:same", reference="approval:same")
    )
    assert len({hold.pk for hold in holds}) == 1
    hold = holds[0]
    captures = race(
        lambda i: ledger_capture(hold=hold, credits=100, key="capture:job:same", reference="job:same")
    )
    assert len({txn.pk for txn in captures}) == 1

    def resolve(i):
        service = ledger_close_hold if i % 2 else ledger_void_hold
        try:
            return service(hold=hold, key=f"resolve:{i}").status
        except HoldAlreadyResolved:
            return "refused"

    outcomes = Counter(race(resolve))
    assert outcomes["refused"] == WORKERS - 1  # one resolution won; every other was refused, not repeated
    assert ledger_total(team) == {"available": 900, "held": 0, "usage": 100, "breakage": 0}
    assert ledger_check().ok


def test_a_new_teams_first_operations_open_its_accounts_once(plans):
    team = Team.objects.create(name="Fresh", slug="fresh", plan=plans["pro"])
    race(lambda i: ledger_grant(team=team, credits=10, key=f"fresh:{i}"))
    assert Account.objects.filter(team=team).count() == 2
    assert Account.objects.get(team=team, kind="available").balance == 10 * WORKERS
    assert ledger_check().ok


def test_one_key_raced_by_two_teams_has_one_outcome(team, other_team):
    teams = [team, other_team]

    def grant(i):
        try:
            return ledger_grant(team=teams[i % 2], credits=50, key="contested").team_id
        except IdempotencyConflict:
            return "conflict"

    outcomes = Counter(race(grant))
    winners = [team_id for team_id in outcomes if team_id != "conflict"]
    assert len(winners) == 1
    assert outcomes[winners[0]] == WORKERS // 2  # the winner's own retries got its outcome back
    assert outcomes["conflict"] == WORKERS // 2
    assert Operation.objects.filter(key="contested").count() == 1


def test_workers_on_two_teams_never_deadlock(team, other_team):
    ledger_grant(team=team, credits=100_000, key="two:a")
    ledger_grant(team=other_team, credits=100_000, key="two:b")

    def work(worker):
        for n in range(30):
            target = (team, other_team)[(worker + n) % 2]
            held = ledger_hold(team=target, credits=7, key=f"two:hold:{worker}:{n}", reference="x")
            ledger_capture(hold=held, credits=7, key=f"two:capture:{worker}:{n}", reference="x")
        return True

    assert all(race(work))
    assert ledger_total(team)["usage"] + ledger_total(other_team)["usage"] == WORKERS * 30 * 7
    assert ledger_check().ok
