"""The generation queue: launch takes inside a project's approved budget, hand the team's slots out in
FIFO order, cancel waiting takes, and sweep up jobs whose task was lost.

Money moves TigerBeetle-style, in two phases per job. At launch, in one transaction with the project row
locked, each job's credits leave the project's budget hold (`reserve:job:<id>`) and go into a hold of its
own (`hold:job:<id>`), so the ledger shows every take's reservation. Settlement (planner.services.renders)
captures that hold or voids it and returns the credits to the budget (`return:job:<id>`), exactly once.

A job row is written first; its Celery task is sent only once the row is committed. Slots are handed out
by `queue_dispatch` under a per-team lock: a team never runs more jobs than its plan's concurrent
generations, and the rest wait in launch order.
"""

import logging
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import BatchPublishError, OperationalError

from keter import broker
from keter.accounts.models import Membership, Team
from keter.errors import DomainError
from keter.sql import prepared
from ledger.errors import LedgerError
from ledger.services import HoldPart, VoidInto, ledger_hold_split, ledger_resolve_holds
from planner import costing
from planner.catalog import plan_check
from planner.models import Job, Project, Scene
from planner.pricing import PricingContext, pricing_context, take_params
from planner.queue_selectors import remaining_planned_takes, scene_takes
from planner.selectors import approved_budget, project_spend
from planner.services.budget_alerts import budget_usage_check

log = logging.getLogger(__name__)

J = Job.State
MAX_TAKES_PER_LAUNCH = 50
LAUNCHABLE = (Project.Status.APPROVED, Project.Status.IN_PRODUCTION)


class QueueError(DomainError):
    pass


@dataclass
class Dispatch:
    """What one dispatch did: the jobs given a slot, and those of them the broker refused (back in line)."""

    started: list[int] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)


@dataclass
class Launch:
    jobs: list[Job]
    skipped: list[str] = field(default_factory=list)  # scenes "generate the plan" left alone, and why
    dispatch: Dispatch | None = None  # filled once the jobs are committed and offered to the workers

    @property
    def credits(self) -> int:
        return sum(job.credits for job in self.jobs)

    @property
    def is_waiting_for_broker(self) -> bool:
        return self.dispatch is not None and bool(self.dispatch.unsent)


@dataclass(frozen=True)
class _Order:
    """What one scene's takes will be: priced and checked, not written yet."""

    scene: Scene
    takes: int
    credits: int
    params: dict
    success_rate: float


def queue_launch_scene(
    *,
    scene: Scene,
    by: Membership,
    takes: int | None = None,
    ctx: PricingContext | None = None,
    rng: random.Random | None = None,
) -> Launch:
    """Launch `takes` takes of one scene; by default what is left of its planned takes (at least one)."""
    if takes is not None and (
        isinstance(takes, bool) or not isinstance(takes, int) or not 1 <= takes <= MAX_TAKES_PER_LAUNCH
    ):
        raise QueueError(f"Launch between 1 and {MAX_TAKES_PER_LAUNCH} takes at a time", field="takes")
    return _launch(project=scene.project, by=by, ctx=ctx, rng=rng, wanted={scene.pk: takes})


def queue_launch_plan(
    *, project: Project, by: Membership, ctx: PricingContext | None = None, rng: random.Random | None = None
) -> Launch:
    """ "Generate the plan": every scene still short of keepers gets what is left of its planned takes."""
    return _launch(project=project, by=by, ctx=ctx, rng=rng, wanted=None)


def _launch(*, project, by, ctx, rng, wanted: dict[int, int | None] | None) -> Launch:
    if project.team_id != by.team_id:
        raise QueueError("This project belongs to another team")
    ctx = ctx or pricing_context(by.team)
    launch = Launch(jobs=[])
    with transaction.atomic():
        project = (
            Project.objects.select_for_update(of=("self",))
            .select_related("team__plan", "budget_hold")
            .get(pk=project.pk)
        )
        _require_launchable(project)
        orders = _orders(project, ctx, wanted, launch.skipped)
        needed = sum(order.takes * order.credits for order in orders)
        budget = approved_budget(project).final
        spend = project_spend(project)
        room = budget - spend.actual - spend.committed
        if needed > room:
            n = sum(order.takes for order in orders)
            raise QueueError(
                f"The approved budget has {max(room, 0):,} credits left and {n} take{'s' if n != 1 else ''} "
                f"need {needed:,}: launch fewer takes or ask for a change order",
                field="takes",
            )
        jobs = _write_jobs(project, orders, by, rng or random.SystemRandom())
        if project.status == Project.Status.APPROVED:
            project.status = Project.Status.IN_PRODUCTION
            project.save(update_fields=["status", "updated_at"])
        Scene.objects.filter(id__in=[order.scene.id for order in orders], status=Scene.Status.PLANNED).update(
            status=Scene.Status.IN_PRODUCTION
        )
        # The spend read above, with these takes committed. Only a settlement can have moved it since (the
        # project row is locked), and settling never grows spent + committed: a take that failed meanwhile
        # still counts, as it would have a moment earlier.
        budget_usage_check(project=project, spend=replace(spend, committed=spend.committed + needed))
        # Last, because the ledger's team lock is held from here to the commit: settlements wait on it.
        launch.jobs = _reserve(project, jobs)

        def offer() -> None:
            launch.dispatch = queue_dispatch(team_id=project.team_id)

        transaction.on_commit(offer)
    return launch


def _require_launchable(project: Project) -> None:
    if project.budget_hold_id is None or project.status not in LAUNCHABLE:
        raise QueueError(
            f"The project is {project.get_status_display().lower()}: takes can be launched once a lead "
            "has approved its budget"
        )
    if not project.budget_hold.is_pending:
        raise QueueError("The project's budget reservation is closed: no more takes can be launched")


def _orders(project, ctx, wanted, skipped: list[str]) -> list[_Order]:
    scenes = project.scenes.filter(deleted_at__isnull=True).select_related("video_model")
    if wanted is not None:
        scenes = scenes.filter(id__in=wanted)
    scenes = list(scenes)
    if wanted is not None and len(scenes) < len(wanted):
        raise QueueError("This scene was deleted: restore it before launching takes")
    # How far each scene got, for the plan and for "what is left"; a launch of a given count needs none
    # (a scene's count grows with every take it ever had).
    takes = scene_takes(s.id for s in scenes if wanted is None or not wanted[s.id])
    orders = []
    for scene in scenes:
        done = takes[scene.id]
        if wanted is None:
            # The plan: scenes short of keepers, up to what is left of their planned takes.
            if scene.status == Scene.Status.CUT or done.keepers >= scene.variants:
                continue
            n = remaining_planned_takes(scene, done)
            if n <= 0:
                skipped.append(f"“{scene}” has used its planned takes: launch more from the scene")
                continue
        else:
            if scene.status == Scene.Status.CUT:
                raise QueueError(f"“{scene}” is cut: set it back to planned before launching takes")
            n = wanted[scene.id] or max(remaining_planned_takes(scene, done), 1)
        orders.append(_order(scene, min(n, MAX_TAKES_PER_LAUNCH), ctx))
    if not orders:
        reason = "; ".join(skipped) if skipped else "every scene has its keepers"
        raise QueueError(f"Nothing to launch: {reason}")
    return orders


def _order(scene: Scene, takes: int, ctx: PricingContext) -> _Order:
    """Price one take of the scene as it stands now, refusing what the model or the plan does not allow."""
    if scene.invalid_input or scene.estimate_error:
        reason = scene.estimate_error or "some of its fields could not be read"
        raise QueueError(f"“{scene}” needs fixing before launching takes: {reason}")
    entry = ctx.catalog.by_id().get(scene.video_model_id)
    if entry is None:
        raise QueueError(f"“{scene}”: {scene.video_model.name} has no price today", field="model")
    if not entry.model.is_active:
        raise QueueError(f"“{scene}”: {entry.model.name} is retired: choose another model", field="model")
    params = take_params(scene)
    try:
        take = entry.take_cost(params)
        plan_check(plan=ctx.plan, entry=entry, params=params)
    except costing.CostError as error:
        raise QueueError(f"“{scene}”: {error.message}", field=error.field) from None
    snapshot = params.to_dict() | {"quality": take.quality, "audio": take.audio, "prompt": scene.prompt}
    return _Order(scene, takes, take.credits, snapshot, ctx.success_rate(entry))


def _write_jobs(project: Project, orders: list[_Order], by: Membership, rng: random.Random) -> list[Job]:
    """The job rows, queued, numbered after the scene's last take; `_reserve` gives them their credits."""
    last_take = dict(
        Job.objects.filter(scene__in=[o.scene for o in orders])
        .order_by()
        .values_list("scene_id")
        .annotate(top=Max("take_number"))
    )
    now = timezone.now()
    jobs = []
    for order in orders:
        model = order.scene.video_model
        for number in range(1, order.takes + 1):
            jobs.append(
                Job(
                    team_id=project.team_id,
                    project=project,
                    scene=order.scene,
                    video_model=model,
                    take_number=last_take.get(order.scene.id, 0) + number,
                    params=order.params,
                    credits=order.credits,
                    seed=rng.randrange(2**31),
                    success_rate=Decimal(str(round(order.success_rate, 3))),
                    render_seconds=model.render_seconds_per_output_second
                    * order.params["seconds"]
                    * settings.KETER_SIM_SPEED,
                    queued_at=now,
                    launched_by=by.user,
                )
            )
    Job.objects.bulk_create(jobs)
    return jobs


def _reserve(project: Project, jobs: list[Job]) -> list[Job]:
    """Each job's reservation: out of the budget hold (`reserve:job:<id>`), into a hold of its own
    (`hold:job:<id>`), all in one call to the ledger."""
    parts = [
        HoldPart(
            credits=job.credits,
            release_key=f"reserve:job:{job.pk}",
            key=f"hold:job:{job.pk}",
            reference=job.reference,
        )
        for job in jobs
    ]
    try:
        holds = ledger_hold_split(hold=project.budget_hold, parts=parts)
    except LedgerError as refusal:
        # The whole launch rolls back with it, so nothing is written.
        raise QueueError(f"The ledger refused the reservation: {refusal.message}") from None
    for job, hold in zip(jobs, holds, strict=True):
        job.hold = hold
    # One plain UPDATE joined to a list of pairs: the ORM's bulk_update (a CASE with a branch per job) took
    # as long as the ledger call, with the team's ledger lock held until the commit; a subquery per job
    # looking its pair up ran 4.2-4.6 ms for 50 jobs on the benchmark's database, the join 2.9-3.7 ms.
    pairs = ", ".join("(%s, %s)" for _ in jobs)
    table = Job._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH pairs (job, hold) AS (VALUES {pairs}) "
            f"UPDATE {table} SET hold_id = pairs.hold FROM pairs WHERE {table}.id = pairs.job",
            [value for job in jobs for value in (job.pk, job.hold_id)],
        )
    return jobs


def queue_cancel(*, job: Job, by: Membership) -> Job:
    """Cancel a take that is still waiting for a slot; its credits go back to the project's budget."""
    if job.team_id != by.team_id:
        raise QueueError("This take belongs to another team")
    with transaction.atomic():
        cancelled = Job.objects.filter(id=job.pk, state=J.QUEUED).update(
            state=J.CANCELLED, finished_at=timezone.now()
        )
        job.refresh_from_db()
        if not cancelled:
            state = job.get_state_display().lower()
            raise QueueError(f"Take {job.take_number} is {state}: only a queued take can be cancelled")
        job_give_back(job)
    return job


@transaction.atomic
def queue_cancel_waiting(*, project: Project) -> int:
    """Cancel every queued take of the project (it is being closed); running ones settle on their own."""
    cancelled = 0
    for job in project.jobs.filter(state=J.QUEUED).select_related("hold", "project__budget_hold"):
        waiting = Job.objects.filter(id=job.pk, state=J.QUEUED)
        if waiting.update(state=J.CANCELLED, finished_at=timezone.now()):
            job_give_back(job)
            cancelled += 1
    return cancelled


def job_give_back(job: Job) -> None:
    """Void the job's hold and return its credits to the project's budget hold (call it inside the
    transaction that moved the job to its final state).

    When the budget can no longer take them (the project was closed meanwhile, or the credits came from a
    lot that expired), they stay with the team: the void already made them available (or broke them).
    """
    (returned,) = ledger_resolve_holds(resolutions=[job_give_back_resolution(job)])
    if not returned:
        log.info(
            "job %s: %s credits stay with the team (the budget could not take them)", job.pk, job.credits
        )


def job_give_back_resolution(job: Job) -> VoidInto:
    """What giving a job's credits back asks of the ledger (`void:job:<id>`, then `return:job:<id>`)."""
    return VoidInto(
        hold=job.hold,
        key=f"void:job:{job.pk}",
        into=job.project.budget_hold,
        into_key=f"return:job:{job.pk}",
        credits=job.credits,
    )


def _lease(now: datetime, seconds: float = 0.0) -> datetime:
    return now + timedelta(seconds=seconds + settings.KETER_QUEUE_LEASE_SECONDS)


def queue_dispatch(*, team_id: int, send: bool = True) -> Dispatch:
    """Give the team's oldest queued jobs the free slots of its plan and send them to the workers.

    The tasks are sent once that is committed; if the broker refuses them, those jobs go back to the
    line as they were (queued, same place) for the next dispatch or the sweeper. `send=False` is for a
    caller that renders the jobs itself (the demo seed).
    """
    result = Dispatch()
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic():
        result.started = take_free_slots(team_id=team_id, wait_for_disk=not owns_transaction)
        if result.started and send:
            transaction.on_commit(lambda: send_jobs(result.started, result))
    return result


# Set by a transaction's own statement on PostgreSQL (a column it returns): its commit returns before its
# record is on disk. Only for a transaction that moves no credits and that the queue redoes if it is lost:
# a dispatch (lost, its jobs are queued again and the sweeper hands the slots out anew; a task sent for one
# finds it not running and does nothing) or a claim (lost, the job is unclaimed and is rendered again). A
# database crash can lose the last such commits, never half of one, and the next ordinary commit, a
# settlement's, puts them on disk with it. Settlements, which move credits, always wait for the disk.
NO_DISK_WAIT = "set_config('synchronous_commit', 'off', true)"


def take_free_slots(*, team_id: int, wait_for_disk: bool = True) -> list[int]:
    """Move the team's oldest queued jobs into its free slots (inside the caller's transaction).

    The team row is locked while slots are counted, so two dispatches never hand out the same slot. The
    queued rows are taken with SKIP LOCKED: a job a cancel is holding is left for the next round, and a
    dispatch never waits for a job row, so it cannot close a deadlock with a settlement or a cancel.
    A settlement dispatches last, holding its team's ledger lock; nothing holds the team row while
    waiting for the ledger. On PostgreSQL the lock and the move are two prepared statements sent in one
    round trip (two statements, so the count after the lock sees what the previous holder committed);
    elsewhere they run one after the other.
    """
    if connection.vendor == "postgresql":
        lock, move = free_slot_statements(team_id=team_id, wait_for_disk=wait_for_disk)
        return slots_taken(prepared(*move, pipeline=[lock]))
    now = timezone.now()
    lock, move = _slot_statements(wait_for_disk=wait_for_disk)
    moment = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(lock, [team_id])
        cursor.execute(move, _move_params(team_id, moment(now), moment(_lease(now))))
        return slots_taken(cursor.fetchall())


def free_slot_statements(*, team_id: int, wait_for_disk: bool = True) -> list[tuple[str, list]]:
    """`take_free_slots` on PostgreSQL as its two statements, for a caller that sends them along with
    statements of its own (`keter.sql.prepared_many`); `slots_taken` reads the second one's rows."""
    now = timezone.now()
    lock, move = _slot_statements(wait_for_disk=wait_for_disk)
    return [(lock, [team_id]), (move, _move_params(team_id, now, _lease(now)))]


def slots_taken(moved: list[tuple]) -> list[int]:
    """The jobs the move gave a slot, in line order."""
    return [job_id for job_id, _ in sorted(moved, key=lambda row: (row[1], row[0]))]


def _move_params(team_id: int, now, lease) -> list:
    return [now, lease, team_id, team_id, team_id]


@cache
def _slot_statements(*, wait_for_disk: bool) -> tuple[str, str]:
    job, team, plan = Job._meta.db_table, Team._meta.db_table, Team.plan.field.related_model._meta.db_table
    postgres = connection.vendor == "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    # The states are written out, not parameters: a prepared statement's generic plan can then use the
    # index of active jobs (planner_job_active_line), whose condition a parameter cannot be proved to meet.
    queued, running = f"'{J.QUEUED.value}'", f"'{J.RUNNING.value}'"
    move = (
        f"UPDATE {job} SET state = {running}, dispatched_at = %s, lease_expires_at = %s WHERE id IN ("
        f"SELECT id FROM {job} WHERE team_id = %s AND state = {queued} ORDER BY queued_at, id "
        f"LIMIT {'GREATEST' if postgres else 'MAX'}(0, "
        f"(SELECT p.concurrent_generations FROM {team} t JOIN {plan} p ON p.id = t.plan_id WHERE t.id = %s)"
        f" - (SELECT COUNT(*) FROM {job} WHERE team_id = %s AND state = {running})){skip_locked}"
        f") RETURNING id, queued_at"
    )
    # NO KEY UPDATE: dispatches wait for each other, not for (nor block) the foreign-key checks of rows
    # that point at the team, such as a launch's new jobs at its commit.
    columns = "id" if wait_for_disk or not postgres else f"id, {NO_DISK_WAIT}"
    lock = f"SELECT {columns} FROM {team} WHERE id = %s" + (
        " FOR NO KEY UPDATE" if connection.features.has_select_for_update else ""
    )
    return lock, move


def send_jobs(job_ids: list[int], result: Dispatch) -> None:
    """Send a render task per job, all in one round trip where the broker allows it (Redis: a pipeline).
    If the broker fails, the jobs go back in line for the next dispatch or the sweeper; a task of theirs
    that did reach the broker is harmless (a job's claim is conditional).

    A busy worker sends the next takes' tasks itself, so this is on its hot path: `keter.broker` sends
    them for about a third of the CPU `render_job.apply_async` spends on each."""
    from planner.tasks import render_job

    try:
        broker.send_tasks(render_job, [(job_id,) for job_id in job_ids])
    # A broker that cannot be reached, or one lost once the messages were on their way (which of them
    # arrived is then unknown).
    except (OperationalError, BatchPublishError, OSError) as error:
        log.warning("broker unreachable, %d job(s) wait in line: %s", len(job_ids), error)
        result.unsent = list(job_ids)
        # Not claimed by a worker (started_at is empty), so nobody is rendering them.
        Job.objects.filter(id__in=result.unsent, state=J.RUNNING, started_at__isnull=True).update(
            state=J.QUEUED, dispatched_at=None, lease_expires_at=None
        )


@dataclass
class Sweep:
    resent: list[int] = field(default_factory=list)
    dispatched: list[int] = field(default_factory=list)


def queue_sweep(*, now: datetime | None = None) -> Sweep:
    """Send again the running jobs whose lease ran out (their task or worker was lost), and offer free
    slots to queued jobs (a dispatch that never ran, a broker that was down). Safe to run any time:
    a job sent twice still settles once."""
    now = now or timezone.now()
    sweep = Sweep()
    lost = Job.objects.filter(state=J.RUNNING, lease_expires_at__lt=now).values_list("id", "lease_expires_at")
    for job_id, lease in lost:
        # Conditional: a worker that settles or claims it meanwhile wins.
        if Job.objects.filter(id=job_id, state=J.RUNNING, lease_expires_at=lease).update(
            started_at=None, dispatched_at=now, lease_expires_at=_lease(now)
        ):
            sweep.resent.append(job_id)
    if sweep.resent:
        resent = list(sweep.resent)
        transaction.on_commit(lambda: send_jobs(resent, Dispatch()))
    waiting = Job.objects.filter(state=J.QUEUED).order_by().values_list("team_id", flat=True).distinct()
    for team_id in waiting:
        sweep.dispatched += queue_dispatch(team_id=team_id).started
    return sweep
