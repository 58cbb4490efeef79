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
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ledger.services import ledger_capture_and_close
from planner.models import Job
from planner.services.queue import Dispatch, job_give_back, send_jobs, take_free_slots

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
    """Take the job for rendering, or None when it is settled or someone is already rendering it."""
    # Everything settling needs, read once: the hold, the model's refund policy, the budget hold.
    job = Job.objects.select_related("hold", "video_model", "project__budget_hold").filter(id=job_id).first()
    if job is None or job.state != J.RUNNING or job.started_at is not None:
        return None
    now = timezone.now()
    lease = now + timedelta(seconds=job.render_seconds + settings.KETER_QUEUE_LEASE_SECONDS)
    claimed = Job.objects.filter(id=job_id, state=J.RUNNING, started_at__isnull=True).update(
        started_at=now, attempts=F("attempts") + 1, lease_expires_at=lease
    )
    if not claimed:
        return None
    job.started_at, job.attempts, job.lease_expires_at = now, job.attempts + 1, lease
    return job


def job_settle(*, job_id: int, state: str, send: bool = True, job: Job | None = None) -> bool:
    """Move a running job to its final state and its credits accordingly; False if it was settled already.

    Charged (a success, or moderation by a model that charges for it): the job's hold is captured
    (`capture:job:<id>`) and closed (`close:job:<id>`). Otherwise it is voided (`void:job:<id>`) and the
    credits return to the project's budget hold (`return:job:<id>`). The freed slot goes to the next job
    in the team's line, sent to the workers on commit (unless `send` is False: the caller renders it).
    `job` is the job as its claim read it (with its hold, model and project's budget hold), if at hand:
    none of that changes while it runs.
    """
    if state not in (J.SUCCEEDED, J.FAILED, J.MODERATED):
        raise ValueError(f"a render ends succeeded, failed or moderated, not {state!r}")
    if job is None:
        job = Job.objects.select_related("hold", "video_model", "project__budget_hold").get(pk=job_id)
    with transaction.atomic():
        settled = Job.objects.filter(id=job_id, state=J.RUNNING).update(
            state=state, finished_at=timezone.now(), lease_expires_at=None
        )
        if not settled:
            return False
        # From here to the commit the team's ledger lock and then its dispatch lock are held, so this
        # part is kept to two round trips: one ledger call, one dispatch.
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
        # The slot is free: the next take in the team's line gets it, in this same transaction.
        next_jobs = Dispatch(started=take_free_slots(team_id=job.team_id))
        if next_jobs.started and send:
            transaction.on_commit(lambda: send_jobs(next_jobs.started, next_jobs))
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
