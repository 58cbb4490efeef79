"""A busy worker's settlement on PostgreSQL, outside any transaction block: its statements go in one round
trip and commit together at its end, or nothing of them is written."""

import tempfile

import pytest
from django.db import DatabaseError, connection
from psycopg import pq

from keter.accounts.roles import Role
from keter.sql import prepared
from ledger.checks import ledger_check
from ledger.errors import HoldAlreadyResolved
from ledger.models import Hold, Operation, Transaction
from ledger.services import ledger_void_hold
from planner.models import Job
from planner.services.queue import queue_dispatch, queue_launch_scene
from planner.services.renders import (
    NOT_ALL_RUNNING,
    _finish_statement,
    _load_for_settling,
    job_settle,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def running(roomy, member, demo, takes: int) -> list[Job]:
    jobs = queue_launch_scene(scene=roomy, by=member(Role.PRODUCER), takes=takes).jobs
    queue_dispatch(team_id=demo.id, send=False)
    return jobs


def protocol_of(call) -> list[str]:
    """The messages the connection exchanged with the server while `call()` ran (libpq's trace)."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            call()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return trace.read().splitlines()


def test_a_settlement_is_one_round_trip_and_one_transaction(roomy, member, demo):
    (job,) = running(roomy, member, demo, 1)
    settling = _load_for_settling(job.id)
    assert not connection.in_atomic_block

    protocol = protocol_of(lambda: job_settle(job_id=job.id, state="succeeded", send=False, job=settling))

    # One sync point, so one reply to wait for, and no BEGIN or COMMIT of its own: the statements are one
    # implicit transaction that the sync commits.
    assert sum("\tSync" in line for line in protocol) == 1, protocol
    assert sum("ReadyForQuery" in line for line in protocol) == 1, protocol
    assert not [line for line in protocol if "BEGIN" in line or "COMMIT" in line], protocol
    assert Job.objects.get(pk=job.pk).state == "succeeded"
    assert Hold.objects.get(pk=job.hold_id).captured == 40
    assert ledger_check().ok


def test_a_settlement_the_ledger_refuses_leaves_the_job_running_and_writes_nothing(roomy, member, demo):
    (job,) = running(roomy, member, demo, 1)
    ledger_void_hold(hold=Hold.objects.get(pk=job.hold_id), key="void:by-hand")  # its credits are gone
    postings = Transaction.objects.count()

    with pytest.raises(HoldAlreadyResolved):  # raised as the service raises it, by the careful way
        job_settle(job_id=job.id, state="succeeded")

    # The job's move went first in the round trip: it is undone with the ledger call the server refused.
    assert Job.objects.get(pk=job.pk).state == "running"
    assert Transaction.objects.count() == postings
    assert not Operation.objects.filter(key=f"capture:job:{job.id}").exists()
    assert ledger_check().ok


def test_the_move_of_a_batch_moves_all_its_jobs_or_none(roomy, member, demo):
    done, other = running(roomy, member, demo, 2)
    assert job_settle(job_id=done.id, state="succeeded", send=False)

    with pytest.raises(DatabaseError) as refused:
        prepared(*_finish_statement({done.id: "succeeded", other.id: "failed"}, all_or_none=True))

    assert refused.value.__cause__.sqlstate == NOT_ALL_RUNNING
    assert Job.objects.get(pk=other.pk).state == "running"
    # Without all_or_none it moves the ones still running.
    assert prepared(*_finish_statement({done.id: "succeeded", other.id: "failed"})) == [(other.id,)]
