"""Takes: keepers and rejects, the scene's readiness for editing, the learned success rate and the
project's checklist before hand-over."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keter.accounts.roles import Role
from planner.models import Job, Scene
from planner.pricing import pricing_context
from planner.queue_selectors import (
    LEARNED_RATE_MIN_TAKES,
    attach_takes,
    learned_rates,
    project_readiness,
    scene_takes,
)
from planner.selectors import approved_budget, project_spend
from planner.services.queue import QueueError, queue_dispatch, queue_launch_scene
from planner.services.scenes import project_reprice, scene_update
from planner.services.takes import take_judge


@pytest.fixture
def takes(project, make_scene, approve, member, demo, finish):
    """takes(n, scene=None) -> n successful takes of a 4 s Sora scene wanting 2 keepers."""
    scene = make_scene(model="sora-2", seconds=4, variants=2, planned_takes_override=4)
    approve(project, credits=3000)

    def make(n, states=None):
        jobs = queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=n).jobs
        done = []
        for index, job in enumerate(jobs):
            queue_dispatch(team_id=demo.id)
            done.append(finish(job, states[index] if states else "succeeded"))
        return done

    make.scene = scene
    return make


def judge(job, member, verdict):
    return take_judge(job=job, by=member(Role.PRODUCER), verdict=verdict)


def test_a_scene_is_ready_for_editing_with_as_many_keepers_as_variants(takes, member):
    first, second, third = takes(3)
    scene = takes.scene
    assert not scene.is_ready_for_editing
    judge(first, member, "keeper")
    judge(second, member, "rejected")
    assert not Scene.objects.get(pk=scene.pk).is_ready_for_editing
    judge(third, member, "keeper")
    assert Scene.objects.get(pk=scene.pk).is_ready_for_editing
    # Pages count keepers for every scene at once and agree with the property.
    assert attach_takes([Scene.objects.get(pk=scene.pk)])[0].is_ready_for_editing


def test_a_producer_may_change_their_mind(takes, member):
    (take,) = takes(1)
    judge(take, member, "keeper")
    judge(take, member, "rejected")
    judge(take, member, "pending")
    take.refresh_from_db()
    assert (take.verdict, take.judged_at) == ("pending", None)


def test_only_a_successful_take_can_be_judged(takes, member):
    (failed,) = takes(1, states=["failed"])
    with pytest.raises(QueueError, match="only a successful take can be judged"):
        judge(failed, member, "keeper")
    assert Job.objects.get(pk=failed.pk).verdict == "pending"


@pytest.mark.parametrize("verdict", ["", "great", "KEEPER"])
def test_a_verdict_is_keeper_or_reject(takes, member, verdict):
    (take,) = takes(1)
    with pytest.raises(QueueError, match="keeper or reject"):
        judge(take, member, verdict)


def test_the_catalog_rate_holds_until_enough_takes_are_judged(takes, member, demo):
    jobs = takes(LEARNED_RATE_MIN_TAKES)
    for job in jobs[:-1]:
        judge(job, member, "keeper" if job.take_number <= 3 else "rejected")
    assert learned_rates(demo) == {}
    ctx = pricing_context(demo)
    entry = ctx.catalog.get("sora-2")
    assert ctx.success_rate(entry) == 0.35
    assert ctx.rate_label(entry.model, 0.35) == "catalog est. 35%"


def test_the_learned_rate_takes_over_after_ten_judged_takes(takes, member, demo, project):
    jobs = takes(LEARNED_RATE_MIN_TAKES)
    for job in jobs:
        judge(job, member, "keeper" if job.take_number <= 3 else "rejected")
    ctx = pricing_context(demo)
    entry = ctx.catalog.get("sora-2")
    assert ctx.success_rate(entry) == 0.3
    assert ctx.rate_label(entry.model, 0.3) == "learned 30% from 10 takes"
    # The estimator uses it: 2 keepers at 30% is 6.7 expected takes where the catalog said 5.7.
    scene = scene_update(scene=takes.scene, data={"planned_takes_override": ""}, ctx=ctx).scene
    assert (float(scene.success_rate), round(scene.expected_takes, 1)) == (0.3, 6.7)
    # And so do the next takes' simulated outcomes.
    job = queue_launch_scene(scene=scene, by=member(Role.PRODUCER), takes=1, ctx=ctx).jobs[0]
    assert float(job.success_rate) == 0.3


def test_learned_rates_cost_one_query(takes, member, demo, django_assert_num_queries):
    for job in takes(LEARNED_RATE_MIN_TAKES):
        judge(job, member, "keeper")
    with django_assert_num_queries(1):
        rates = learned_rates(demo)
    assert {rate.rate for rate in rates.values()} == {1.0}


def test_the_scene_cost_cell_says_which_rate_it_used(takes, member, client_as, project):
    page = client_as(Role.PRODUCER).get(f"/t/northwind/projects/{project.id}/").content.decode()
    assert "catalog est. 35%" in page
    for job in takes(LEARNED_RATE_MIN_TAKES):
        judge(job, member, "keeper" if job.take_number <= 4 else "rejected")
    page = client_as(Role.PRODUCER).get(f"/t/northwind/projects/{project.id}/").content.decode()
    assert "learned 40% from 10 takes" in page


def readiness(project, ctx):
    scenes = attach_takes(project_reprice(project=project, ctx=ctx))
    spend = project_spend(project)
    checks = project_readiness(
        project, scenes, budget=approved_budget(project).final, spent=spend.actual, committed=spend.committed
    )
    return {check.name: (check.ok, check.detail) for check in checks}


def test_the_checklist_before_hand_over(takes, member, project, ctx):
    checks = readiness(project, ctx)
    assert checks["The queue"] == (True, "Nothing left queued or running")
    assert checks["Ready for editing"] == (False, "1 of 1 scene still needs keepers: “Scene 1”")
    assert checks["Successful takes"][0] is False
    first, second, third = takes(3, states=["succeeded", "failed", "succeeded"])
    queue_launch_scene(scene=takes.scene, by=member(Role.PRODUCER), takes=2)
    checks = readiness(project, ctx)
    assert checks["The queue"] == (False, "2 takes still queued or running")
    assert checks["Successful takes"] == (True, "Every scene has enough successful takes")
    assert checks["Repeat generations vs planned"] == (False, "“Scene 1” took more takes than planned")
    assert checks["Scene cost vs estimate"] == (True, "Every scene stayed within its planned credits")
    assert checks["Limits respected"] == (True, "160 of 3,000 approved credits used; the plan's limits hold")
    judge(first, member, "keeper")
    judge(third, member, "keeper")
    assert readiness(project, ctx)["Ready for editing"] == (True, "Every scene has its keepers")


def test_the_checklist_flags_a_scene_that_cost_more_than_planned(takes, project, ctx):
    takes(4)  # 4 takes × 40 = 160 credits, planned 4 takes: within the estimate
    assert readiness(project, ctx)["Scene cost vs estimate"][0]
    Scene.objects.filter(pk=takes.scene.pk).update(planned_takes_override=3)
    assert readiness(project, ctx)["Scene cost vs estimate"] == (False, "“Scene 1” spent more than planned")


def test_spend_and_scene_takes_read_only_the_projects_holds(takes, project):
    """Each take's hold is looked up by its key: a join to the hold table let PostgreSQL hash every team's
    holds to sum one project's (23 ms for 300 takes on the benchmark's database, 0.5 ms by lookup)."""
    done = takes(2, states=["succeeded", "failed"])
    with CaptureQueriesContext(connection) as queries:
        spend = project_spend(project)
        counts = scene_takes([takes.scene.id])[takes.scene.id]
    assert (spend.actual, counts.charged, counts.spent) == (done[0].credits, 1, done[0].credits)
    statements = [query["sql"] for query in queries.captured_queries if "ledger_hold" in query["sql"]]
    assert statements and not any('JOIN "ledger_hold"' in sql for sql in statements)
