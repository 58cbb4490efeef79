"""Periodic ledger work for Celery beat (schedule in settings.CELERY_BEAT_SCHEDULE). Each task is thin and
idempotent: running one twice, or on two workers at once, changes nothing the first run did not."""

from celery import shared_task

from ledger.services import ledger_expire_holds, ledger_expire_lots, ledger_grant_plan_credits


@shared_task
def grant_plan_credits() -> int:
    return ledger_grant_plan_credits()


@shared_task
def expire_lots() -> int:
    return ledger_expire_lots()


@shared_task
def expire_holds() -> int:
    return ledger_expire_holds()
