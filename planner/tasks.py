"""Celery tasks of the generation queue: thin, idempotent, each calling one service. They take ids, and a
task delivered twice (late acknowledgement, a worker lost, the sweeper) changes nothing the first did not."""

from celery import shared_task

from planner.services.queue import queue_sweep
from planner.services.renders import job_run


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def render_job(job_id: int) -> str | None:
    return job_run(job_id=job_id)


@shared_task(ignore_result=True)
def sweep_queue() -> int:
    sweep = queue_sweep()
    return len(sweep.resent) + len(sweep.dispatched)
