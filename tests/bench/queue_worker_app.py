"""The Celery app as the queue benchmark's worker runs it: the project's app and tasks, plus a no-op task
(Celery's own throughput, the reference) and a marker that says when the tasks before it have run."""

import os
import time

import redis

from keter.celery import app


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    pass


@app.task(name="bench.mark", ignore_result=True)
def mark(key: str) -> None:
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).set(key, time.time(), ex=600)
