"""A year of realistic ledger history, written in bulk: for benchmarks, reports and demos.

`generate_history` simulates, in Python, what the services would have posted for a team over a year:
plan grants each billing period (expiring at the next one), top-ups when the balance runs short, project
budgets held at approval, change orders that extend them, budgets closed at delivery, voided at
cancellation or timed out, refunds of moderated takes, expired plan lots going to breakage, and a few
adjustments by the finance member. Takes move credits as the generation queue does: each
leaves its project's budget hold (`reserve:job:<n>`) for a hold of its own (`hold:job:<n>`), which a few
minutes later is captured and closed, or voided with the credits returned to the budget (`return:job:<n>`).
It follows the services' rules exactly (the lots' burn order, the allocations of holds to lots, what goes
to breakage) and writes the rows the services would have written, with their keys and operations, so
`ledger_check` passes afterwards.

It does not call the services, which take a lock and a dozen queries per operation: it computes every
balance-after chain in memory and writes the rows in bulk (COPY on PostgreSQL, batched INSERTs elsewhere),
so a million entries (and the planner's rows behind them) take two or three minutes. Everything is
written in one transaction: all or nothing.

The ledger knows nothing of projects and jobs: the references are opaque, as always. The app that owns
them may answer `ledger.signals.history_starting` with a `HistorySetup`: the first free numbers (so the
references and keys are the ones its services would write, `job:<id>`, and never collide with later ones)
and the kinds of take its catalog prices. Without one they are `job:h<team>-<n>` and a fixed price list.
`ledger.signals.history_generated` then hands it the story (`HistoryResult.budgets` and `.takes`) inside
the same transaction, to write its own rows.
"""

import heapq
import itertools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from keter.accounts.models import Membership, Plan, Team, User
from keter.accounts.plans import load_plans
from keter.accounts.roles import Role
from keter.errors import DomainError
from ledger.models import Account, Entry, Hold, HoldLot, Lot, Operation, Transaction
from ledger.services._core import MAX_CREDITS, as_json_moment, system_account_ids
from ledger.services.lots import MIN_TOP_UP
from ledger.services.plans import plan_grant_key, team_period
from ledger.signals import history_generated, history_starting

A = Account.Kind
K = Transaction.Kind

# Whole-credit take prices and how often each comes up: mostly short clips, a few long 4K ones.
TAKE_PRICES = [8, 12, 20, 35, 48, 60, 90, 120, 150, 200, 320, 450, 640]
TAKE_WEIGHTS = [6, 8, 10, 12, 12, 10, 10, 8, 8, 6, 5, 3, 2]
SUCCESS_RATE = 0.76
MODERATED = 0.03  # share of takes blocked by moderation: charged, and now and then refunded later
OPEN_PROJECTS = 3
SCENES_PER_PROJECT = (2, 6)
TAKES_PER_PROJECT = (8, 120)
TAKES_A_DAY_AT_SCALE_1 = 80  # past this pace, projects grow with the team's volume
ENTRIES_PER_TAKE = 6.6  # first guess until the team's own ratio is known
ADJUSTMENT_REASONS = [
    "Goodwill credits after the render outage",
    "Sales promotion credits",
    "Credits for the beta feedback programme",
]
BATCH_ROWS = 20_000


class HistoryRefused(DomainError):
    pass


class Outcome:
    SUCCEEDED, FAILED, MODERATED = "succeeded", "failed", "moderated"


@dataclass(frozen=True)
class TakeKind:
    """One kind of take the story launches: its price, how often it is chosen, how often it comes out."""

    credits: int
    weight: float
    success_rate: float
    is_moderation_charged: bool = True  # else a moderated take is voided and returned, as a failure is


DEFAULT_TAKE_KINDS = [
    TakeKind(credits=p, weight=w, success_rate=SUCCESS_RATE)
    for p, w in zip(TAKE_PRICES, TAKE_WEIGHTS, strict=True)
]


@dataclass(frozen=True)
class HistorySetup:
    """What the owner of the references tells the history before it starts (see `history_starting`).

    `first_numbers`: the first free number of each kind of reference ("project", "approval", "job"); the
    history numbers its projects, budget approvals and jobs from there and uses the keys the planner's
    services use. `take_kinds`: the takes to draw from (prices, weights, success rates).
    """

    first_numbers: dict[str, int]
    take_kinds: list[TakeKind]


@dataclass(slots=True, eq=False)
class BudgetStory:
    """A project's budget as the ledger saw it: approved (and extended by change orders), then resolved."""

    team_id: int
    number: int | str
    hold: "_Hold"
    opened_at: datetime
    take_kinds: list[int]  # indexes into the take kinds: one per scene
    approvals: list[tuple[int | str, int, datetime]]  # (approval number, credits added, when)

    @property
    def hold_id(self) -> int:
        return self.hold.id

    @property
    def status(self) -> str:
        return self.hold.status

    @property
    def resolved_at(self) -> datetime | None:
        return self.hold.resolved_at


@dataclass(slots=True, eq=False)
class TakeStory:
    """One take: launched from a budget into a hold of its own, settled minutes later (or still rendering)."""

    team_id: int
    number: int | str
    budget: BudgetStory
    scene: int  # which of the budget's scenes (an index into budget.take_kinds)
    kind: int
    hold: "_Hold"
    launched_at: datetime
    settled_at: datetime | None = None
    outcome: str | None = None  # an Outcome, or None while it renders

    @property
    def hold_id(self) -> int:
        return self.hold.id

    @property
    def credits(self) -> int:
        return self.hold.credits

    @property
    def refunded(self) -> int:
        return self.hold.refunded


@dataclass
class HistoryResult:
    teams: list[Team]
    start: datetime
    end: datetime
    transactions: int = 0
    entries: int = 0
    lots: int = 0
    holds: int = 0
    budgets: list[BudgetStory] = field(default_factory=list, repr=False)
    takes: list[TakeStory] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        names = ", ".join(team.slug for team in self.teams)
        return (
            f"Generated {self.entries:,} entries in {self.transactions:,} transactions, {self.lots:,} lots "
            f"and {self.holds:,} holds for {names}, from {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}."
        )


def generate_history(
    *,
    entries: int,
    teams: list[Team] | None = None,
    team_slugs: list[str] | None = None,
    seed: int = 1,
    days: int = 365,
    end: datetime | None = None,
    options: dict | None = None,
) -> HistoryResult:
    """Write about `entries` ledger entries (at least that many, a few more to finish the last event)
    spread over `days` days ending at `end` (now), shared evenly by the teams.

    Teams are given, or found or created by slug (new teams get the Pro plan). A team must have no ledger
    history yet; one created after the start of the history is backdated to it, so its plan periods cover
    the whole year. Listeners of `history_starting` and `history_generated` take part in the same
    transaction (`options` is passed on to them: the command's options).
    """
    if entries < 1:
        raise HistoryRefused("Ask for at least one entry", field="entries")
    end = end or timezone.now()
    start = end - timedelta(days=days)
    with transaction.atomic():
        teams = list(teams or []) + [_team(slug, start) for slug in team_slugs or []]
        if not teams:
            teams = [_team("archive-films", start)]
        busy = Transaction.objects.filter(team__in=teams).values_list("team__slug", flat=True).distinct()
        if busy:
            raise HistoryRefused(
                f"{', '.join(sorted(busy))} already has ledger history: generate into a new team",
                field="team_slugs",
            )
        for team in teams:
            if team.created_at > start:
                team.created_at = start - timedelta(days=1)
                Team.objects.filter(pk=team.pk).update(created_at=team.created_at)
        options = options or {"entries": entries, "seed": seed, "days": days}
        setups = [
            answer
            for _, answer in history_starting.send(sender=HistoryResult, teams=teams, options=options)
            if isinstance(answer, HistorySetup)
        ]
        if len(setups) > 1:
            raise AssertionError("more than one listener numbers the history's references")
        simulation = _Simulation(
            teams=teams, entries=entries, seed=seed, start=start, end=end, setup=setups[0] if setups else None
        )
        simulation.run()
        history_generated.send(sender=HistoryResult, result=simulation.result, options=options)
        return simulation.result


def _team(slug: str, start: datetime) -> Team:
    team = Team.objects.select_related("plan").filter(slug=slug).first()
    if team is None:
        plan = Plan.objects.filter(slug="pro").first() or next(p for p in load_plans() if p.slug == "pro")
        name = slug.replace("-", " ").title()
        team = Team.objects.create(name=name, slug=slug, plan=plan, created_at=start - timedelta(days=1))
    return team


@dataclass(slots=True, eq=False)
class _Allocation:
    id: int
    lot: Lot
    reserved: int = 0
    captured: int = 0
    released: int = 0
    refunded: int = 0


@dataclass(slots=True, eq=False)
class _Hold:
    id: int
    team_id: int
    credits: int
    reference: str
    key: str
    created_at: datetime
    expires_at: datetime | None
    captured: int = 0
    released: int = 0
    refunded: int = 0
    status: str = Hold.Status.PENDING
    resolved_at: datetime | None = None
    allocations: dict[int, _Allocation] = field(default_factory=dict)

    @property
    def open_credits(self) -> int:
        return self.credits - self.captured - self.released if self.status == Hold.Status.PENDING else 0


@dataclass(eq=False)
class _Project:
    story: BudgetStory
    takes_left: int

    @property
    def hold(self) -> _Hold:
        return self.story.hold


@dataclass(eq=False)
class _Book:
    team: Team
    available_id: int
    held_id: int
    target: int
    finance_id: int
    available: int = 0
    held: int = 0
    written: int = 0
    takes: int = 0
    spent: int = 0
    # Exactly the team's active lots with credits left: what holds and negative adjustments draw from.
    lots: dict[int, Lot] = field(default_factory=dict)
    projects: list[_Project] = field(default_factory=list)
    project_scale: float = 1.0
    change_orders: int = 0
    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def key(self, what: str) -> str:
        return f"history:{self.team.pk}:{what}:{next(self.numbers)}"


class _Simulation:
    def __init__(self, *, teams: list[Team], entries: int, seed: int, start: datetime, end: datetime,
                 setup: HistorySetup | None = None):  # fmt: skip
        self.random = random.Random(seed)
        self.start, self.end = start, end
        self.target = entries
        self.result = HistoryResult(teams=teams, start=start, end=end)
        self.rows = _Rows()
        self.system = system_account_ids()
        self.events: list = []
        self.sequence = itertools.count()
        self.stopped = False
        self.all_lots: list[Lot] = []
        self.all_holds: list[_Hold] = []
        self.ids = self.rows.reserve_ids()
        # Numbers of projects, approvals and jobs: the owner's next free ids, else labels of our own.
        self.numbered = setup is not None
        self.counters = {
            what: itertools.count(n) for what, n in (setup.first_numbers if setup else {}).items()
        }
        self.kinds = list(setup.take_kinds if setup and setup.take_kinds else DEFAULT_TAKE_KINDS)
        self.kind_weights = [kind.weight for kind in self.kinds]
        self.mean_take = sum(k.credits * k.weight for k in self.kinds) / sum(self.kind_weights)
        self.max_take = max(kind.credits for kind in self.kinds)
        share, extra = divmod(entries, len(teams))
        self.books = [self._open_book(team, share + (1 if i < extra else 0)) for i, team in enumerate(teams)]

    def number(self, book: _Book, what: str) -> int | str:
        if self.numbered:
            return next(self.counters[what])
        return f"h{book.team.pk}-{next(book.numbers)}"

    def _open_book(self, team: Team, target: int) -> _Book:
        Account.objects.bulk_create(
            [Account(team=team, kind=kind) for kind in Account.TEAM_KINDS], ignore_conflicts=True
        )
        ids = dict(Account.objects.filter(team=team).values_list("kind", "id"))
        days = max((self.end - self.start).total_seconds() / 86_400, 1)
        takes_a_day = target / ENTRIES_PER_TAKE / days
        return _Book(
            team=team,
            available_id=ids[A.AVAILABLE],
            held_id=ids[A.HELD],
            target=target,
            finance_id=_finance_member(team).pk,
            project_scale=max(1.0, takes_a_day / TAKES_A_DAY_AT_SCALE_1),
        )

    def at(self, when: datetime, action: Callable, *args) -> None:
        if when <= self.end:
            heapq.heappush(self.events, (when, next(self.sequence), action, args))

    def run(self) -> None:
        for book in self.books:
            self.at(self.start + timedelta(minutes=1), self.plan_grant, book)
            self.at(self.start + timedelta(hours=2), self.first_top_up, book)
            self.at(self.start + timedelta(hours=3), self.take, book)
            self.at(self.start + timedelta(days=self.random.uniform(20, 60)), self.adjust, book)
        while self.events and not self.stopped:
            when, _, action, args = heapq.heappop(self.events)
            action(when, *args)
            self.stopped = self.result.entries >= self.target
        self.rows.add_final(self.all_lots, self.all_holds)
        self.rows.flush_all()
        for book in self.books:
            Account.objects.filter(pk=book.available_id).update(balance=book.available)
            Account.objects.filter(pk=book.held_id).update(balance=book.held)
        self.rows.reset_sequences()
        self.rows.analyze()
        self.result.lots, self.result.holds = len(self.all_lots), len(self.all_holds)

    def plan_grant(self, when: datetime, book: _Book) -> None:
        team, plan = book.team, book.team.plan
        period = team_period(team, when)
        if plan.monthly_credits > 0 and not team.is_archived:
            expires = period.end if plan.rollover != Plan.Rollover.NEVER_EXPIRE else None
            lot = self.add_lot(
                book,
                when,
                kind=K.GRANT,
                source=A.ISSUANCE_GRANTS,
                credits=plan.monthly_credits,
                key=plan_grant_key(team, period),
                reference=f"plan:{plan.slug}:{period.label}",
                memo=f"{plan.name} plan credits for {period.label}",
                category=Lot.Category.PROMOTIONAL,
                effective_at=period.start,
                expires_at=expires,
            )
            if expires is not None:
                self.at(expires + timedelta(seconds=30), self.expire_lot, book, lot)
        if period.end is not None:
            self.at(period.end + timedelta(seconds=60), self.plan_grant, book)

    def first_top_up(self, when: datetime, book: _Book) -> None:
        self.top_up(when, book, self.monthly_spend(book, when))

    def monthly_spend(self, book: _Book, when: datetime) -> int:
        """What the team spends in a month at the pace it was given (or has had so far)."""
        elapsed = (when - self.start).total_seconds() / 86_400
        if elapsed >= 7 and book.spent:
            return int(book.spent / elapsed * 30)
        days = max((self.end - self.start).total_seconds() / 86_400, 1)
        return int(book.target / ENTRIES_PER_TAKE / days * 30 * self.mean_take)

    def top_up(self, when: datetime, book: _Book, credits: int) -> None:
        credits = min(MAX_CREDITS, max(MIN_TOP_UP, math.ceil(credits / 1000) * 1000))
        number = next(book.numbers)
        self.add_lot(
            book,
            when,
            kind=K.TOP_UP,
            source=A.ISSUANCE_PURCHASES,
            credits=credits,
            key=f"history:{book.team.pk}:top-up:{number}",
            reference=f"INV-{when:%Y}-{book.team.pk:03d}{number:05d}",
            memo="",
            category=Lot.Category.PAID,
            effective_at=None,
            expires_at=None,
            actor_id=book.finance_id,
        )

    def ensure_spendable(self, when: datetime, book: _Book, credits: int) -> None:
        free = self.free(book, when)
        if free < credits:
            self.top_up(when, book, max(credits - free, self.monthly_spend(book, when)))

    def take(self, when: datetime, book: _Book) -> None:
        """One take launched against an open project's budget, as the queue launches it: its credits leave
        the budget hold for a hold of their own, settled when the render ends. Then the next take."""
        project = self.project_for(when, book)
        scene = self.random.randrange(len(project.story.take_kinds))
        kind = project.story.take_kinds[scene]
        price = self.kinds[kind].credits
        budget = project.hold
        if budget.open_credits < price:
            # The team's first budget to run short gets a change order, so that even a short history shows
            # one; after that, one in two.
            if not book.change_orders or self.random.random() < 0.5:
                self.change_order(when, book, project, price)
            else:
                self.finish(when, book, project, Hold.Status.POSTED)
                project = self.project_for(when, book, new=True)
                scene = self.random.randrange(len(project.story.take_kinds))
                kind = project.story.take_kinds[scene]
                price = self.kinds[kind].credits
                budget = project.hold
        number = self.number(book, "job")
        job = f"job:{number}"
        self.release(when, book, budget, price, key=f"reserve:{job}", reference=job)
        self.ensure_spendable(when, book, price)  # only short when the budget's lot had expired meanwhile
        hold = self.hold(when, book, price, key=f"hold:{job}", reference=job, expires_at=None)
        story = TakeStory(
            team_id=book.team.pk, number=number, budget=project.story, scene=scene, kind=kind, hold=hold,
            launched_at=when,
        )  # fmt: skip
        self.result.takes.append(story)
        render = timedelta(seconds=self.random.uniform(20, 900))
        self.at(when + render, self.settle, book, project, story)
        book.takes += 1
        project.takes_left -= 1
        if project.takes_left <= 0:
            book.projects.remove(project)
            later = when + timedelta(hours=self.random.uniform(1, 72))
            status = Hold.Status.VOIDED if self.random.random() < 0.08 else Hold.Status.POSTED
            self.at(later, self.finish_later, book, project, status)
        self.next_take(when, book)

    def settle(self, when: datetime, book: _Book, project: _Project, story: TakeStory) -> None:
        """The render's outcome: a charged take is captured and its hold closed; a failed one is voided and
        its credits go back to the budget, if the budget is still open and they are still available."""
        hold, job = story.hold, f"job:{story.number}"
        draw = self.random.random()
        if draw < MODERATED:
            outcome = Outcome.MODERATED
        elif (draw - MODERATED) / (1 - MODERATED) < self.kinds[story.kind].success_rate:
            outcome = Outcome.SUCCEEDED
        else:
            outcome = Outcome.FAILED
        story.outcome, story.settled_at = outcome, when
        if outcome == Outcome.FAILED or (
            outcome == Outcome.MODERATED and not self.kinds[story.kind].is_moderation_charged
        ):
            self.resolve(when, book, hold, status=Hold.Status.VOIDED, kind=K.HOLD_VOID, key=f"void:{job}")
            budget = project.hold
            if budget.status == Hold.Status.PENDING and self.free(book, when) >= hold.credits:
                self.extend(when, book, budget, hold.credits, key=f"return:{job}")
            return
        capture = self.capture(when, book, hold, hold.credits, job)
        self.resolve(when, book, hold, status=Hold.Status.POSTED, kind=K.HOLD_CLOSE, key=f"close:{job}")
        if outcome == Outcome.MODERATED and self.random.random() < 0.5:
            later = when + timedelta(hours=self.random.uniform(1, 24 * 7))
            self.at(later, self.refund, book, hold, hold.credits, job, capture)

    def next_take(self, when: datetime, book: _Book) -> None:
        left = book.target - book.written
        if left <= 0:
            return
        per_take = book.written / book.takes if book.takes >= 20 else ENTRIES_PER_TAKE
        remaining = (self.end - when).total_seconds()
        gap = self.random.expovariate(1.0) * remaining / max(1.0, left / per_take)
        if when.weekday() >= 5:
            gap *= 3  # quieter at weekends; the pace catches up on weekdays
        gap = min(gap, remaining / 2)
        self.at(when + timedelta(seconds=gap), self.take, book)

    def project_for(self, when: datetime, book: _Book, *, new: bool = False) -> _Project:
        open_projects = [p for p in book.projects if p.hold.status == Hold.Status.PENDING]
        book.projects = open_projects
        if not new and open_projects and (len(open_projects) >= OPEN_PROJECTS or self.random.random() < 0.9):
            return self.random.choice(open_projects)
        # A busier team runs bigger productions, not just more of them.
        takes = round(self.random.randint(*TAKES_PER_PROJECT) * book.project_scale)
        scenes = self.random.randint(*SCENES_PER_PROJECT)
        kinds = self.random.choices(range(len(self.kinds)), self.kind_weights, k=scenes)
        # Sized on what the takes are expected to cost (failed takes give their credits back), give or take
        # the producer's guess: a budget that runs short gets a change order, or the project ends early.
        charged = [self.kinds[k].success_rate + (1 - self.kinds[k].success_rate) * MODERATED for k in kinds]
        mean = sum(self.kinds[k].credits * share for k, share in zip(kinds, charged, strict=True)) / scenes
        budget = min(
            MAX_CREDITS,
            max(self.max_take, int(round(takes * mean * self.random.uniform(0.85, 1.3), -1))),
        )
        self.ensure_spendable(when, book, budget)
        number, approval = self.number(book, "project"), self.number(book, "approval")
        # A few budgets are approved for a limited time (and a few of those run out before the project ends).
        expires = when + timedelta(days=self.random.uniform(3, 30)) if self.random.random() < 0.15 else None
        hold = self.hold(
            when,
            book,
            budget,
            key=f"hold:approval:{approval}",
            reference=f"project:{number}",
            expires_at=expires,
        )
        if expires is not None:
            self.at(expires + timedelta(seconds=45), self.expire_hold, book, hold)
        story = BudgetStory(
            team_id=book.team.pk, number=number, hold=hold, opened_at=when, take_kinds=kinds,
            approvals=[(approval, budget, when)],
        )  # fmt: skip
        self.result.budgets.append(story)
        project = _Project(story=story, takes_left=takes)
        book.projects.append(project)
        return project

    def change_order(self, when: datetime, book: _Book, project: _Project, price: int) -> None:
        """The budget ran short: a change order approved on the spot extends the budget hold."""
        hold = project.hold
        extra = min(MAX_CREDITS, max(price, int(round(hold.credits / 3, -1))))
        self.ensure_spendable(when, book, extra)
        approval = self.number(book, "approval")
        self.extend(when, book, hold, extra, key=f"hold:approval:{approval}")
        project.story.approvals.append((approval, extra, when))
        book.change_orders += 1

    def finish_later(self, when: datetime, book: _Book, project: _Project, status: str) -> None:
        if project.hold.status == Hold.Status.PENDING:
            self.finish(when, book, project, status)

    def finish(self, when: datetime, book: _Book, project: _Project, status: str) -> None:
        """The project is delivered (its budget hold closed) or cancelled (voided), as the planner keys it."""
        if project in book.projects:
            book.projects.remove(project)
        verb = "delivered" if status == Hold.Status.POSTED else "archived"
        kind = K.HOLD_CLOSE if status == Hold.Status.POSTED else K.HOLD_VOID
        key = f"{verb}:project:{project.story.number}"
        self.resolve(when, book, project.hold, status=status, kind=kind, key=key)

    def expire_hold(self, when: datetime, book: _Book, hold: _Hold) -> None:
        if hold.status == Hold.Status.PENDING:
            key = f"expire:hold:{hold.id}"
            self.resolve(when, book, hold, status=Hold.Status.EXPIRED, kind=K.HOLD_EXPIRE, key=key)

    def refund(self, when: datetime, book: _Book, hold: _Hold, credits: int, job: str, capture: int) -> None:
        credits = min(credits, hold.captured - hold.refunded)
        if credits > 0:
            self.refund_hold(when, book, hold, credits, job, capture)

    def adjust(self, when: datetime, book: _Book) -> None:
        if self.random.random() < 0.7:
            credits = self.random.choice([100, 250, 500, 1000])
            reason = self.random.choice(ADJUSTMENT_REASONS)
        else:
            free = sum(lot.free for lot in book.lots.values())
            credits = -min(free, self.random.choice([50, 120, 300]))
            reason = f"{credits} credits: correction of a duplicated grant"  # starts with "-": see exports
        if credits:
            self.adjustment(when, book, credits, reason)
        self.at(when + timedelta(days=self.random.uniform(25, 75)), self.adjust, book)

    def free(self, book: _Book, when: datetime) -> int:
        return sum(lot.free for lot in self.spendable(book, when))

    def spendable(self, book: _Book, when: datetime) -> list[Lot]:
        lots = [
            lot
            for lot in book.lots.values()
            if lot.remaining > lot.reserved
            and lot.effective_at <= when
            and (lot.expires_at is None or lot.expires_at > when)
        ]
        return sorted(lots, key=Lot.burn_key)

    def pick(self, book: _Book, when: datetime, credits: int) -> list[tuple[Lot, int]]:
        picks, needed = [], credits
        for lot in self.spendable(book, when):
            take = min(lot.free, needed)
            picks.append((lot, take))
            needed -= take
            if not needed:
                return picks
        raise AssertionError(f"the simulation let team {book.team.pk} run short of {credits} credits")

    def add_lot(self, book, when, *, kind, source, credits, key, reference, memo, category, effective_at,
                expires_at, actor_id=None) -> Lot:  # fmt: skip
        lot = Lot(
            id=next(self.ids[Lot]),
            team_id=book.team.pk,
            category=category,
            priority=0,
            credits=credits,
            remaining=credits,
            effective_at=effective_at or when,
            expires_at=expires_at,
            key=key,
            reference=reference,
            memo=memo,
            actor_id=actor_id,
            created_at=when,
        )
        self.all_lots.append(lot)
        book.lots[lot.pk] = lot
        request = {
            "credits": credits,
            "category": category,
            "priority": 0,
            "reference": reference,
            "expires_at": as_json_moment(expires_at),
            "effective_at": as_json_moment(effective_at),
        }
        self.post(book, when, kind, {source: -credits, A.AVAILABLE: credits}, key, request, lot=lot,
                  reference=reference, memo=memo, actor_id=actor_id)  # fmt: skip
        return lot

    def adjustment(self, when: datetime, book: _Book, credits: int, reason: str) -> None:
        key = book.key("adjust")
        request = {"credits": credits, "corrects": None}
        common = {"memo": reason, "actor_id": book.finance_id}
        if credits > 0:
            lot = Lot(
                id=next(self.ids[Lot]),
                team_id=book.team.pk,
                category=Lot.Category.PROMOTIONAL,
                credits=credits,
                remaining=credits,
                effective_at=when,
                key=key,
                memo=reason,
                actor_id=book.finance_id,
                created_at=when,
            )
            self.all_lots.append(lot)
            book.lots[lot.pk] = lot
            legs = {A.ADJUSTMENTS: -credits, A.AVAILABLE: credits}
            self.post(book, when, K.ADJUST, legs, key, request, lot=lot, **common)
            return
        needed = -credits
        for lot in sorted(book.lots.values(), key=Lot.burn_key):
            take = min(lot.free, needed)
            if take:
                lot.remaining -= take
                needed -= take
                self.forget_if_spent(book, lot)
            if not needed:
                break
        self.post(
            book, when, K.ADJUST, {A.AVAILABLE: credits, A.ADJUSTMENTS: -credits}, key, request, **common
        )

    def expire_lot(self, when: datetime, book: _Book, lot: Lot) -> None:
        if lot.status != Lot.Status.ACTIVE:
            return
        broken = lot.free
        lot.remaining -= broken
        lot.status = Lot.Status.EXPIRED
        book.lots.pop(lot.pk, None)
        key = f"expire:lot:{lot.pk}"
        if broken:
            legs = {A.AVAILABLE: -broken, A.BREAKAGE: broken}
            self.post(book, when, K.LOT_EXPIRE, legs, key, {"lot": lot.pk}, lot=lot, reference=lot.reference)
        else:
            self.operation(book, when, K.LOT_EXPIRE, key, {"lot": lot.pk}, lot=lot)

    def hold(self, when, book, credits, *, key, reference, expires_at) -> _Hold:
        hold = _Hold(
            id=next(self.ids[Hold]),
            team_id=book.team.pk,
            credits=credits,
            reference=reference,
            key=key,
            created_at=when,
            expires_at=expires_at,
        )
        self.all_holds.append(hold)
        self.reserve(book, when, hold, credits)
        request = {"credits": credits, "reference": reference, "expires_at": as_json_moment(expires_at)}
        legs = {A.AVAILABLE: -credits, A.HELD: credits}
        self.post(book, when, K.HOLD, legs, key, request, hold=hold, reference=reference)
        return hold

    def extend(self, when, book, hold: _Hold, credits: int, *, key: str) -> None:
        self.reserve(book, when, hold, credits)
        hold.credits += credits
        legs = {A.AVAILABLE: -credits, A.HELD: credits}
        request = {"hold": hold.id, "credits": credits}
        self.post(book, when, K.HOLD_EXTEND, legs, key, request, hold=hold, reference=hold.reference)

    def reserve(self, book, when, hold: _Hold, credits: int) -> None:
        for lot, take in self.pick(book, when, credits):
            lot.reserved += take
            allocation = hold.allocations.get(lot.pk)
            if allocation is None:
                allocation = hold.allocations[lot.pk] = _Allocation(id=next(self.ids[HoldLot]), lot=lot)
            allocation.reserved += take

    def capture(self, when, book, hold: _Hold, credits: int, job: str) -> int:
        left = credits
        for allocation in sorted(self.reserved(hold), key=lambda a: a.lot.burn_key()):
            take = min(allocation.reserved, left)
            allocation.reserved -= take
            allocation.captured += take
            allocation.lot.reserved -= take
            allocation.lot.remaining -= take
            self.forget_if_spent(book, allocation.lot)
            left -= take
            if not left:
                break
        hold.captured += credits
        book.spent += credits
        request = {"hold": hold.id, "credits": credits, "reference": job}
        legs = {A.HELD: -credits, A.USAGE: credits}
        return self.post(book, when, K.CAPTURE, legs, f"capture:{job}", request, hold=hold, reference=job)

    def release(self, when, book, hold: _Hold, credits: int, *, key: str, reference: str) -> None:
        hold.released += credits
        request = {"hold": hold.id, "credits": credits, "reference": reference}
        self.give_back(
            when, book, hold, credits, kind=K.RELEASE, key=key, request=request, reference=reference
        )

    def resolve(self, when, book, hold: _Hold, *, status: str, kind: str, key: str) -> None:
        remainder = hold.open_credits
        request = {"hold": hold.id}
        if remainder:
            hold.released += remainder
            self.give_back(
                when, book, hold, remainder, kind=kind, key=key, request=request, reference=hold.reference
            )
        else:
            self.operation(book, when, kind, key, request, hold=hold)
        hold.status, hold.resolved_at = status, when

    def give_back(self, when, book, hold: _Hold, credits: int, *, kind, key, request, reference) -> None:
        to_available = to_breakage = 0
        left = credits
        for allocation in sorted(self.reserved(hold), key=lambda a: a.lot.burn_key(), reverse=True):
            take = min(allocation.reserved, left)
            allocation.reserved -= take
            allocation.released += take
            lot = allocation.lot
            lot.reserved -= take
            if lot.status == Lot.Status.ACTIVE:
                to_available += take
            else:
                lot.remaining -= take  # an expired lot's credits cannot come back: breakage
                to_breakage += take
            left -= take
            if not left:
                break
        legs = {A.HELD: -credits, A.AVAILABLE: to_available, A.BREAKAGE: to_breakage}
        self.post(book, when, kind, legs, key, request, hold=hold, reference=reference)

    def refund_hold(self, when, book, hold: _Hold, credits: int, job: str, capture: int) -> None:
        to_available = to_breakage = 0
        left = credits
        refundable = [a for a in hold.allocations.values() if a.captured > a.refunded]
        for allocation in sorted(refundable, key=lambda a: a.lot.burn_key(), reverse=True):
            take = min(allocation.captured - allocation.refunded, left)
            allocation.refunded += take
            lot = allocation.lot
            if lot.status == Lot.Status.ACTIVE:
                lot.remaining += take
                book.lots[lot.pk] = lot
                to_available += take
            else:
                to_breakage += take
            left -= take
            if not left:
                break
        hold.refunded += credits
        book.spent -= credits
        request = {"hold": hold.id, "credits": credits, "reference": job, "corrects": capture}
        legs = {A.USAGE: -credits, A.AVAILABLE: to_available, A.BREAKAGE: to_breakage}
        self.post(
            book,
            when,
            K.REFUND,
            legs,
            f"refund:{job}",
            request,
            hold=hold,
            reference=job,
            corrects_id=capture,
        )

    @staticmethod
    def reserved(hold: _Hold) -> list[_Allocation]:
        return [allocation for allocation in hold.allocations.values() if allocation.reserved > 0]

    @staticmethod
    def forget_if_spent(book: _Book, lot: Lot) -> None:
        if lot.remaining == 0:
            book.lots.pop(lot.pk, None)

    def post(self, book: _Book, when, kind, legs, key, request, *, hold=None, lot=None, reference="", memo="",
             actor_id=None, corrects_id=None) -> int:  # fmt: skip
        """Write one balanced transaction, its entries with their balances after, and its operation."""
        legs = {account_kind: credits for account_kind, credits in legs.items() if credits}
        if len(legs) < 2 or sum(legs.values()) != 0:
            raise AssertionError(f"unbalanced {kind}: {legs}")
        txn_id = next(self.ids[Transaction])
        hold_id = hold.id if hold else None
        lot_id = lot.pk if lot else None
        add = self.rows.add
        row = (txn_id, book.team.pk, kind, key, reference, memo, actor_id, hold_id, lot_id, corrects_id, when)
        add(Transaction, row)
        entry_ids = self.ids[Entry]
        for account_kind, credits in legs.items():
            if account_kind == A.AVAILABLE:
                book.available += credits
                add(Entry, (next(entry_ids), txn_id, book.available_id, credits, book.available))
                balance = book.available
            elif account_kind == A.HELD:
                book.held += credits
                add(Entry, (next(entry_ids), txn_id, book.held_id, credits, book.held))
                balance = book.held
            else:
                add(Entry, (next(entry_ids), txn_id, self.system[account_kind], credits, None))
                balance = 0
            if balance < 0:
                raise AssertionError(f"{kind} took team {book.team.pk}'s {account_kind} below zero")
        book.written += len(legs)
        self.result.entries += len(legs)
        self.result.transactions += 1
        self.operation(book, when, kind, key, request, txn_id=txn_id, hold=hold, lot=lot)
        return txn_id

    def operation(self, book, when, kind, key, request, *, txn_id=None, hold=None, lot=None) -> None:
        self.rows.add(
            Operation,
            (next(self.ids[Operation]), key, kind, book.team.pk, json.dumps(request), Operation.Outcome.DONE,
             txn_id, hold.id if hold else None, lot.pk if lot else None, "", "", "{}", when),
        )  # fmt: skip


def _finance_member(team: Team) -> User:
    """Who tops up and adjusts in the story: the team's finance member (or owner), else a new one."""
    for role in (Role.FINANCE, Role.OWNER):
        membership = Membership.objects.filter(team=team, role=role).select_related("user").first()
        if membership:
            return membership.user
    user = User.objects.filter(email=f"finance+{team.slug}@history.keter").first()
    if user is None:
        user = User.objects.create_user(f"finance+{team.slug}@history.keter", name=f"{team.name} finance")
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.FINANCE})
    return user


class _Rows:
    """The simulation's rows, buffered per table and written in bulk in the current transaction.

    PostgreSQL gets COPY (an order of magnitude faster than INSERT); other databases get batched INSERTs.
    Ids are chosen here, after the highest existing ones, under a lock that keeps other writers out until
    the transaction ends; the sequences are moved past them at the end.
    """

    COLUMNS = {
        Transaction: ["id", "team_id", "kind", "key", "reference", "memo", "actor_id", "hold_id", "lot_id",
                      "corrects_id", "created_at"],
        Entry: ["id", "transaction_id", "account_id", "credits", "balance_after"],
        Operation: ["id", "key", "kind", "team_id", "request", "outcome", "transaction_id", "hold_id",
                    "lot_id", "error_code", "error_message", "error_details", "created_at"],
        Lot: ["id", "team_id", "category", "priority", "credits", "remaining", "reserved", "status",
              "effective_at", "expires_at", "key", "reference", "memo", "actor_id", "created_at"],
        Hold: ["id", "team_id", "credits", "captured", "released", "refunded", "status", "reference", "key",
               "expires_at", "created_at", "resolved_at"],
        HoldLot: ["id", "hold_id", "lot_id", "reserved", "captured", "released", "refunded"],
    }  # fmt: skip

    def __init__(self):
        self.buffers = {model: [] for model in self.COLUMNS}
        self.is_postgres = connection.vendor == "postgresql"

    def reserve_ids(self) -> dict:
        if self.is_postgres:
            tables = ", ".join(model._meta.db_table for model in self.COLUMNS)
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        # On SQLite the transaction began with BEGIN IMMEDIATE: it holds the write lock already.
        return {
            model: itertools.count((model.objects.aggregate(top=Max("id"))["top"] or 0) + 1)
            for model in self.COLUMNS
        }

    def add(self, model, row: tuple) -> None:
        buffer = self.buffers[model]
        buffer.append(row)
        if len(buffer) >= BATCH_ROWS:
            # Parents first, so a database that checks foreign keys at once is satisfied too.
            if model in (Entry, Operation):
                self.flush(Transaction)
            self.flush(model)

    def add_final(self, lots: list[Lot], holds: list[_Hold]) -> None:
        for lot in lots:
            self.add(Lot, tuple(getattr(lot, name) for name in self.COLUMNS[Lot]))
        for hold in holds:
            self.add(Hold, (hold.id, hold.team_id, hold.credits, hold.captured, hold.released, hold.refunded,
                            hold.status, hold.reference, hold.key, hold.expires_at, hold.created_at,
                            hold.resolved_at))  # fmt: skip
            for a in hold.allocations.values():
                self.add(HoldLot, (a.id, hold.id, a.lot.pk, a.reserved, a.captured, a.released, a.refunded))

    def flush_all(self) -> None:
        for model in (Lot, Hold, HoldLot, Transaction, Entry, Operation):
            self.flush(model)

    def flush(self, model) -> None:
        rows = self.buffers[model]
        if not rows:
            return
        columns = self.COLUMNS[model]
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.is_postgres:
                with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                adapt = [self._adapter(model, name) for name in columns]
                values = [tuple(f(v) if f else v for f, v in zip(adapt, row, strict=True)) for row in rows]
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
        rows.clear()

    @staticmethod
    def _adapter(model, name):
        field = model._meta.get_field(name.removesuffix("_id")) if name != "id" else None
        if field is not None and field.get_internal_type() == "DateTimeField":
            return lambda value: connection.ops.adapt_datetimefield_value(value)
        return None

    def analyze(self) -> None:
        """Fresh statistics for the tables just filled, so queries on them are planned for their size."""
        if self.is_postgres:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {', '.join(model._meta.db_table for model in self.COLUMNS)}")

    def reset_sequences(self) -> None:
        statements = connection.ops.sequence_reset_sql(no_style(), list(self.COLUMNS))
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
