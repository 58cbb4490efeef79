"""Simulated renders and their settlement, exactly once.

A worker claims a running job by a conditional UPDATE (nobody else is rendering it), "renders" for the
job's simulated time, draws the outcome from the job's seed and settles it. Settlement moves the job out of
`running` by a conditional UPDATE in the same transaction as its ledger operations, and every ledger
operation carries the job's key, so a task delivered twice, re-sent by the sweeper or retried after a
crash settles the job once and moves its credits once.
"""

import random
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ledger.models import Hold
from ledger.services import ledger_capture_and_close
from planner.models import Job, Project, VideoModel
from planner.services.queue import job_give_back, queue_dispatch

J = Job.State
# Share of takes a model's moderation blocks, whatever the model (the catalog publishes no figure).
MODERATION_RATE = 0.03


def job_outcome(*, seed: int, success_rate) -> str:
    """The state a take ends in, from its seed alone: the same seed and rate always give the same answer."""
    draw = random.Random(seed).random()
    if draw < MODERATION_RATE:
        return J.MODERATED
    return J.SUCCEEDED if (draw - MODERATION_RATE) / (1 - MODERATION_RATE) < float(success_rate) else J.FAILED


def is_charged(job: Job, state: str) -> bool:
    """Whether a take ending in `state` costs its credits, by the model's policy."""
    if state == J.SUCCEEDED:
        return True
    if state == J.MODERATED:
        return not job.video_model.refund_on_moderation
    if state == J.FAILED:
        return not job.video_model.refund_on_failure
    return False


def job_claim(*, job_id: int) -> Job | None:
    """Take the job for rendering, or None when it is settled or someone is already rendering it.

    The job comes back with what settling needs (its hold, its model's refund policy, its project's
    budget hold) loaded; its other fields load on first use. This runs once per take on a busy worker,
    so it reads in one plain joined SELECT rather than through the ORM, whose compiling of a
    select_related query cost more CPU than the rest of the task.
    """
    job = _load_for_settling(job_id)
    if job is None or job.state != J.RUNNING or job.started_at is not None:
        return None
    now = timezone.now()
    lease = now + timedelta(seconds=job.render_seconds + settings.KETER_QUEUE_LEASE_SECONDS)
    moment = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Job._meta.db_table} SET started_at = %s, attempts = attempts + 1, "
            "lease_expires_at = %s WHERE id = %s AND state = %s AND started_at IS NULL",
            [moment(now), moment(lease), job_id, J.RUNNING],
        )
        claimed = cursor.rowcount
    if not claimed:
        return None
    job.started_at, job.attempts, job.lease_expires_at = now, job.attempts + 1, lease
    return job


_JOB_FIELDS = ("id", "team_id", "project_id", "video_model_id", "hold_id", "state", "started_at", "attempts")
_JOB_FIELDS += ("credits", "seed", "success_rate", "render_seconds")


def _load_for_settling(job_id: int) -> Job | None:
    job_table = Job._meta.db_table
    model_table = VideoModel._meta.db_table
    project_table = Project._meta.db_table
    columns = ", ".join(f"j.{Job._meta.get_field(name.removesuffix('_id')).column}" for name in _JOB_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, m.refund_on_failure, m.refund_on_moderation, p.budget_hold_id "
            f"FROM {job_table} j JOIN {model_table} m ON m.id = j.video_model_id "
            f"JOIN {project_table} p ON p.id = j.project_id WHERE j.id = %s",
            [job_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(_JOB_FIELDS, row, strict=False))
    refund_on_failure, refund_on_moderation, budget_hold_id = row[len(_JOB_FIELDS) :]
    job = _partial(Job, values)
    team_id = job.team_id
    job.video_model = _partial(
        VideoModel,
        {
            "id": job.video_model_id,
            "refund_on_failure": bool(refund_on_failure),
            "refund_on_moderation": bool(refund_on_moderation),
        },
    )
    job.hold = _partial(Hold, {"id": job.hold_id, "team_id": team_id}) if job.hold_id else None
    budget_hold = _partial(Hold, {"id": budget_hold_id, "team_id": team_id}) if budget_hold_id else None
    job.project = _partial(
        Project, {"id": job.project_id, "team_id": team_id, "budget_hold_id": budget_hold_id}
    )
    job.project.budget_hold = budget_hold
    return job


def _partial(model, values: dict):
    """An instance with these fields loaded and the others deferred (read from the database if used)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])


def job_settle(*, job_id: int, state: str, send: bool = True, job: Job | None = None) -> bool:
    """Move a running job to its final state and its credits accordingly; False if it was settled already.

    Charged (a success, or moderation by a model that charges for it): the job's hold is captured
    (`capture:job:<id>`) and closed (`close:job:<id>`). Otherwise it is voided (`void:job:<id>`) and the
    credits return to the project's budget hold (`return:job:<id>`). Then the freed slot goes to the next
    job in the team's line, sent to the workers on commit (unless `send` is False: the caller renders it).
    `job` is the job as its claim read it (with its hold, model and project's budget hold), if at hand:
    none of that changes while it runs.
    """
    if state not in (J.SUCCEEDED, J.FAILED, J.MODERATED):
        raise ValueError(f"a render ends succeeded, failed or moderated, not {state!r}")
    if job is None:
        job = _load_for_settling(job_id)
        if job is None:
            raise Job.DoesNotExist(f"No job {job_id}")
    moment = connection.ops.adapt_datetimefield_value
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Job._meta.db_table} SET state = %s, finished_at = %s, lease_expires_at = NULL "
                "WHERE id = %s AND state = %s",
                [state, moment(timezone.now()), job_id, J.RUNNING],
            )
            settled = cursor.rowcount
        if not settled:
            return False
        # From here to the commit the team's ledger lock is held, and every settlement of the team waits
        # for it: one ledger call, then the commit.
        if is_charged(job, state):
            ledger_capture_and_close(
                hold=job.hold,
                credits=job.credits,
                key=f"capture:job:{job_id}",
                close_key=f"close:job:{job_id}",
                reference=job.reference,
            )
        else:
            job_give_back(job)
        # No budget alert to check: settling turns committed credits into spent ones or returns them, so
        # spent + committed never grows here (the launch checked it).
    # The slot is free: the next take in the team's line gets it. In a transaction of its own, under the
    # team's dispatch lock, so that lock and the ledger's are each held for one round trip and a commit,
    # by two settlements at a time. A worker lost between the two leaves the slot to the sweeper.
    queue_dispatch(team_id=job.team_id, send=send)
    job.state = state
    return True


def job_run(*, job_id: int, sleep: Callable[[float], None] = time.sleep, send: bool = True) -> str | None:
    """Claim, render and settle one job (the body of the Celery task). Returns the state it settled in, or
    None when there was nothing to do (settled already, or being rendered by another worker)."""
    job = job_claim(job_id=job_id)
    if job is None:
        return None
    sleep(job.render_seconds)
    state = job_outcome(seed=job.seed, success_rate=job.success_rate)
    return state if job_settle(job_id=job_id, state=state, send=send, job=job) else None
