import importlib
import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ledger import tasks
from ledger.models import Hold, Lot


def run(command: str, *args) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_beat_runs_the_plan_grants_and_both_sweeps():
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "ledger.tasks.grant_plan_credits",
        "ledger.tasks.expire_lots",
        "ledger.tasks.expire_holds",
    } <= tasks_scheduled
    for name in tasks_scheduled:
        module, task = name.rsplit(".", 1)
        assert task in vars(importlib.import_module(module))


def test_the_plan_grant_command_is_safe_to_run_again(demo):
    assert "Granted plan credits to 2 team(s)." in run("ledger_grant_plan_credits")
    assert "Granted plan credits to 0 team(s)." in run("ledger_grant_plan_credits")


def test_the_sweep_commands_take_a_moment_to_act_at(team, grant, hold, later):
    grant(100, expires_at=later(2))
    grant(1_000)
    hold(50, expires_at=later(1))
    assert "Expired 0 lot(s)." in run("ledger_expire_lots")
    assert "Timed out 1 hold(s)." in run("ledger_expire_holds", "--now", later(3).isoformat())
    assert "Expired 1 lot(s)." in run("ledger_expire_lots", "--now", later(3).isoformat())
    assert Lot.objects.filter(status="expired").count() == 1
    assert Hold.objects.get().status == "expired"


def test_a_sweep_command_explains_a_bad_moment(db):
    with pytest.raises(CommandError, match="--now"):
        run("ledger_expire_lots", "--now", "next tuesday")


def test_the_tasks_call_the_services(demo):
    assert tasks.grant_plan_credits() == 2
    assert tasks.expire_lots() == 0
    assert tasks.expire_holds() == 0
