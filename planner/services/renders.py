"""Simulated renders and their settlement, exactly once.

A worker claims a running job by a conditional UPDATE (nobody else is rendering it), "renders" for the
job's simulated time, draws the outcome from the job's seed and settles it. Settlement moves the job out of
`running` by a conditional UPDATE in the same transaction as its ledger operations, and every ledger
operation carries the job's key, so a task delivered twice, re-sent by the sweeper or retried after a
crash settles the job once and moves its credits once.
"""

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from keter.sql import loaded, prepared, prepared_many
from ledger.models import Hold
from ledger.services import (
    NOT_ALL_DONE,
    CaptureAndClose,
    VoidInto,
    ledger_resolve_holds,
    ledger_resolve_holds_call,
)
from planner.models import Job, Project, VideoModel
from planner.services.queue import (
    NO_DISK_WAIT,
    Dispatch,
    free_slot_statements,
    job_give_back_resolution,
    send_jobs,
    slots_taken,
    take_free_slots,
)

log = logging.getLogger(__name__)
J = Job.State
# Share of takes a model's moderation blocks, whatever the model (the catalog publishes no figure).
MODERATION_RATE = 0.03


def job_outcome(*, seed: int, success_rate) -> str:
    """The state a take ends in, from its seed alone: the same seed and rate always give the same answer."""
    draw = random.Random(seed).random()
    if draw < MODERATION_RATE:
        return J.MODERATED
    return J.SUCCEEDED if (draw - MODERATION_RATE) / (1 - MODERATION_RATE) < float(success_rate) else J.FAILED


def job_claim(*, job_id: int) -> Job | None:
    """Take the job for rendering, or None when it is settled or someone is already rendering it.

    The job comes back with what settling needs (its hold, its model's refund policy, its project's
    budget hold) loaded; its other fields load on first use. This runs once per take on a busy worker,
    so it is plain SQL rather than the ORM, whose compiling of a select_related query cost more CPU than
    the rest of the task: on PostgreSQL one UPDATE that claims the job and returns what settling needs
    (one round trip), elsewhere a joined SELECT, then the conditional UPDATE.
    """
    if connection.vendor == "postgresql":
        return _claim_returning(job_id)
    job = _load_for_settling(job_id)
    if job is None or job.state != J.RUNNING or job.started_at is not None:
        return None
    now = timezone.now()
    lease = now + timedelta(seconds=job.render_seconds + settings.KETER_QUEUE_LEASE_SECONDS)
    moment = connection.ops.adapt_datetimefield_value
    claim = (
        f"UPDATE {Job._meta.db_table} SET started_at = %s, attempts = attempts + 1, "
        "lease_expires_at = %s WHERE id = %s AND state = %s AND started_at IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(claim, [moment(now), moment(lease), job_id, J.RUNNING])
        claimed = cursor.rowcount
    if not claimed:
        return None
    job.started_at, job.attempts, job.lease_expires_at = now, job.attempts + 1, lease
    return job


_JOB_FIELDS = ("id", "team_id", "project_id", "video_model_id", "hold_id", "state", "started_at", "attempts")
_JOB_FIELDS += ("credits", "seed", "success_rate", "render_seconds", "lease_expires_at")


@cache
def _settling_columns() -> str:
    columns = ", ".join(f"j.{Job._meta.get_field(name.removesuffix('_id')).column}" for name in _JOB_FIELDS)
    return f"{columns}, m.refund_on_failure, m.refund_on_moderation, p.budget_hold_id"


def _claim_returning(job_id: int) -> Job | None:
    """The claim on PostgreSQL: one prepared statement, whose commit (outside a transaction) need not wait
    for the disk (`NO_DISK_WAIT`)."""
    now = timezone.now()
    params = [now, now, float(settings.KETER_QUEUE_LEASE_SECONDS), job_id, J.RUNNING]
    rows = prepared(_claim_sql(own_transaction=not connection.in_atomic_block), params)
    return _settling_job(rows[0]) if rows else None


@cache
def _claim_sql(*, own_transaction: bool) -> str:
    # A claim that is its own transaction turns off waiting for the disk at its commit (a setting local
    # to that transaction, made by a one-row subquery it joins); inside a caller's transaction it leaves
    # it alone.
    no_disk_wait = f", (SELECT {NO_DISK_WAIT}) AS no_disk_wait" if own_transaction else ""
    return (
        f"UPDATE {Job._meta.db_table} AS j SET started_at = %s, attempts = j.attempts + 1, "
        "lease_expires_at = %s + make_interval(secs => j.render_seconds + %s) "
        f"FROM {VideoModel._meta.db_table} AS m, {Project._meta.db_table} AS p{no_disk_wait} "
        "WHERE j.id = %s AND j.state = %s AND j.started_at IS NULL "
        "AND m.id = j.video_model_id AND p.id = j.project_id "
        f"RETURNING {_settling_columns()}"
    )


def _load_for_settling(job_id: int) -> Job | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_settling_columns()} FROM {Job._meta.db_table} j "
            f"JOIN {VideoModel._meta.db_table} m ON m.id = j.video_model_id "
            f"JOIN {Project._meta.db_table} p ON p.id = j.project_id WHERE j.id = %s",
            [job_id],
        )
        row = cursor.fetchone()
    return None if row is None else _settling_job(row)


def _settling_job(row) -> Job:
    """A row of `_settling_columns()` as the job, with its model, hold and project's budget hold.

    Instances with only these fields loaded (the others deferred), built without Model.__init__: on a
    busy worker, building them through the ORM cost more CPU than the query."""
    values = dict(zip(_JOB_FIELDS, row, strict=False))
    refund_on_failure, refund_on_moderation, budget_hold_id = row[len(_JOB_FIELDS) :]
    job = loaded(Job, **values)
    team_id = job.team_id
    job.video_model = loaded(
        VideoModel,
        id=job.video_model_id,
        refund_on_failure=bool(refund_on_failure),
        refund_on_moderation=bool(refund_on_moderation),
    )
    job.hold = loaded(Hold, id=job.hold_id, team_id=team_id) if job.hold_id else None
    job.project = loaded(Project, id=job.project_id, team_id=team_id, budget_hold_id=budget_hold_id)
    job.project.budget_hold = loaded(Hold, id=budget_hold_id, team_id=team_id) if budget_hold_id else None
    return job


def job_settle(*, job_id: int, state: str, send: bool = True, job: Job | None = None) -> bool:
    """Move a running job to its final state and its credits accordingly; False if it was settled already.

    Charged (a success, or moderation by a model that charges for it): the job's hold is captured
    (`capture:job:<id>`) and closed (`close:job:<id>`). Otherwise it is voided (`void:job:<id>`) and the
    credits return to the project's budget hold (`return:job:<id>`). In the same transaction the freed
    slot goes to the next job in the team's line, sent to the workers on commit (unless `send` is False:
    the caller renders it).
    `job` is the job as its claim read it (with its hold, model and project's budget hold), if at hand:
    none of that changes while it runs.
    """
    if state not in (J.SUCCEEDED, J.FAILED, J.MODERATED):
        raise ValueError(f"a render ends succeeded, failed or moderated, not {state!r}")
    if job is None:
        job = _load_for_settling(job_id)
        if job is None:
            raise Job.DoesNotExist(f"No job {job_id}")
    settlement = _Settlement(job, state)
    if send and not connection.in_atomic_block:
        # The tasks of the jobs given the freed slots are sent once the turn is passed on.
        started = _settle_with_others(settlement)
        if started:
            send_jobs(started, Dispatch(started=started))
    else:
        started = _settle([settlement])
        if started and send:
            transaction.on_commit(lambda: send_jobs(started, Dispatch(started=started)))
    if settlement.error is not None:
        raise settlement.error
    if not settlement.settled:
        return False
    job.state = state
    return True


@dataclass
class _Settlement:
    job: Job
    state: str
    settled: bool = False
    error: BaseException | None = None
    done: bool = False


class _Line:
    """One team's settlements in this worker process: one settles at a time (`turn`); those that arrive
    meanwhile wait in `waiting` and the next one to get the turn settles them all together. While the
    team's takes arrive close together (`busy`: the last two within BUSY_SECONDS), the one with the turn
    first waits GATHER_SECONDS for more."""

    def __init__(self):
        self.turn = threading.Lock()
        self.guard = threading.Lock()
        self.waiting: list[_Settlement] = []
        self.arrived = -math.inf  # time.monotonic() of the last arrival
        self.busy = False


_lines: dict[int, _Line] = {}
_lines_guard = threading.Lock()
# Takes finishing close together wait a moment for each other so that they settle together: one
# transaction, one commit and one send for all of them, as PostgreSQL's commit_delay groups commits. On
# the queue benchmark's worker the larger settlements took 15-20% less CPU per take (worker and database
# together) and settled 10% more takes a second. A take finishing alone (renders of seconds, spread out)
# does not wait.
GATHER_SECONDS = 0.006
BUSY_SECONDS = 0.025


def _settle_with_others(settlement: _Settlement) -> list[int]:
    """Settle along with the team's other takes finishing in this process at the same moment.

    A team's settlements are serialized by its ledger lock, held until each commit, so one team's takes
    settle one commit after the other; on a busy worker (a thread pool) the ones that would queue for
    the lock are settled in the same transaction instead: one ledger call and one commit for all of
    them. Each job still moves out of `running` by its conditional UPDATE in the transaction that moves
    its credits, so nothing changes for exactly-once. Returns the jobs the batch gave a slot to, to the
    thread that settled it (others get none): their tasks are sent after the turn is passed on.
    """
    with _lines_guard:
        line = _lines.setdefault(settlement.job.team_id, _Line())
    with line.guard:
        line.waiting.append(settlement)
        now = time.monotonic()
        line.busy, line.arrived = now - line.arrived < BUSY_SECONDS, now
    with line.turn:
        if settlement.done:
            return []  # settled by the thread that had the turn before
        if line.busy:
            time.sleep(GATHER_SECONDS)
        with line.guard:
            batch, line.waiting = line.waiting, []
        return _settle(batch)


def _settle(batch: list[_Settlement]) -> list[int]:
    """Settle the batch in one transaction, or each on its own if that fails; returns the jobs given the
    slots it freed (their tasks not sent yet)."""
    started = []
    try:
        try:
            started += _settle_in_one_transaction(batch)
        except BaseException as error:
            if not isinstance(error, Exception):  # the worker is stopping: nobody here settled anything
                for settlement in batch:
                    settlement.error = error
                raise
            if len(batch) == 1:
                batch[0].error = error
                return started
            # One of them failed: the transaction rolled back for all, so settle each on its own.
            for settlement in batch:
                try:
                    started += _settle_in_one_transaction([settlement])
                except Exception as own_error:
                    settlement.error = own_error
    finally:
        for settlement in batch:
            settlement.done = True
    return started


def _settle_in_one_transaction(batch: list[_Settlement]) -> list[int]:
    """Move the batch's jobs out of `running`, move their credits, and hand the slots they free to the
    next jobs in the team's line, in one transaction: the team's ledger lock, then its dispatch lock, each
    held to the commit. (In that order: a launch holding the ledger lock checks its jobs' team at commit,
    so a settlement must not hold the team row while waiting for the ledger.) Returns the jobs given a
    slot, whose tasks the caller sends once that is committed."""
    if connection.vendor == "postgresql":
        try:
            if connection.get_autocommit():
                # Outside a transaction block the round trip is the transaction: its statements commit
                # together at its end, with no BEGIN or COMMIT round trip while the ledger lock is held.
                return _settle_in_one_round_trip(batch)
            with transaction.atomic():
                return _settle_in_one_round_trip(batch)
        except _Refused:
            pass  # nothing of it was written: settle the ones still running, as below
    with transaction.atomic():
        settled = _finish_jobs({settlement.job.pk: settlement.state for settlement in batch})
        for settlement in batch:
            settlement.settled = settlement.job.pk in settled
        resolutions = [_resolution(s.job, s.state) for s in batch if s.settled]
        if not resolutions:
            return []
        # From here to the commit the team's ledger lock is held: one ledger call, the dispatch, the commit.
        _log_kept(resolutions, ledger_resolve_holds(resolutions=resolutions))
        # No budget alert to check: settling turns committed credits into spent ones or returns them, so
        # spent + committed never grows here (the launch checked it).
        return take_free_slots(team_id=batch[0].job.team_id)


class _Refused(Exception):
    """The round trip refused the batch, in the server, before anything of it stayed: a job of it was no
    longer running (settled by another delivery of its task), or a ledger operation could not be done."""


# The SQLSTATE planner_job_finish raises when it is to move all of a batch's jobs or none.
NOT_ALL_RUNNING = "KJ001"


def _settle_in_one_round_trip(batch: list[_Settlement]) -> list[int]:
    """The settlement on PostgreSQL when every job of the batch is still running and every ledger
    operation goes through, as it nearly always is: the jobs' move, the ledger call and the slots'
    hand-out sent together, in that order, in one round trip. Each of the first two fails the statement
    when that is not so (the move before the ledger call runs), so the transaction never commits part of
    a settlement, whether it is the caller's or the round trip's own: `_Refused`."""
    states = {settlement.job.pk: settlement.state for settlement in batch}
    resolutions = [_resolution(settlement.job, settlement.state) for settlement in batch]
    call = ledger_resolve_holds_call(resolutions=resolutions, all_or_nothing=True)
    slots = free_slot_statements(team_id=batch[0].job.team_id)
    finish = _finish_statement(states, all_or_none=True)
    try:
        _, ledger_rows, _, given = prepared_many([finish, (call.sql, call.params), *slots])
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) in (NOT_ALL_RUNNING, NOT_ALL_DONE):
            raise _Refused from error
        raise
    _log_kept(resolutions, call.results(ledger_rows))
    for settlement in batch:
        settlement.settled = True
    return slots_taken(given)


def _log_kept(resolutions: list, results: list) -> None:
    for resolution, result in zip(resolutions, results, strict=True):
        if isinstance(resolution, VoidInto) and not result:
            log.info("%s credits stay with the team (the budget could not take them)", resolution.key)


def _finish_statement(states: dict[int, str], *, all_or_none: bool = False) -> tuple[str, list]:
    """On PostgreSQL, the move of these jobs from `running` to their state (planner_job_finish, planner
    migration 0009): one prepared statement whatever their number, returning the ids it moved. With
    `all_or_none` it raises NOT_ALL_RUNNING instead when one of them was not running."""
    finish = "SELECT * FROM planner_job_finish(%s, %s::bigint[], %s::text[], %s)"
    return finish, [timezone.now(), list(states), list(states.values()), all_or_none]


def _finish_jobs(states: dict[int, str]) -> set[int]:
    """Move these jobs from `running` to their state, in one statement; returns the ids it moved."""
    if connection.vendor == "postgresql":
        rows = prepared(*_finish_statement(states))
    else:
        now = timezone.now()
        cases = " ".join("WHEN %s THEN %s" for _ in states)
        ids = ", ".join("%s" for _ in states)
        params = [value for pair in states.items() for value in pair]
        params += [connection.ops.adapt_datetimefield_value(now), *states, J.RUNNING]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Job._meta.db_table} SET state = CASE id {cases} END, finished_at = %s, "
                f"lease_expires_at = NULL WHERE id IN ({ids}) AND state = %s RETURNING id",
                params,
            )
            rows = cursor.fetchall()
    return {row[0] for row in rows}


def _resolution(job: Job, state: str) -> CaptureAndClose | VoidInto:
    if job.charges(state):
        return CaptureAndClose(
            hold=job.hold,
            credits=job.credits,
            key=f"capture:job:{job.pk}",
            close_key=f"close:job:{job.pk}",
            reference=job.reference,
        )
    return job_give_back_resolution(job)


def job_run(*, job_id: int, sleep: Callable[[float], None] = time.sleep, send: bool = True) -> str | None:
    """Claim, render and settle one job (the body of the Celery task). Returns the state it settled in, or
    None when there was nothing to do (settled already, or being rendered by another worker)."""
    job = job_claim(job_id=job_id)
    if job is None:
        return None
    sleep(job.render_seconds)
    state = job_outcome(seed=job.seed, success_rate=job.success_rate)
    return state if job_settle(job_id=job_id, state=state, send=send, job=job) else None
