"""A demo project for Northwind Studio: approved, with takes already rendered and some keepers picked.

Everything goes through the real services (scenes, submission, approval, launch, settlement, verdicts);
only the render time is skipped. Seeds come from a fixed generator, so every fresh demo looks the same.
Idempotent: the project is created once.
"""

import random

from keter.accounts.models import Membership, Team
from keter.accounts.roles import Role
from planner.models import Job, Project
from planner.pricing import pricing_context
from planner.services.approvals import budget_approve, budget_submit
from planner.services.projects import project_create
from planner.services.queue import queue_dispatch, queue_launch_scene
from planner.services.renders import job_run
from planner.services.scenes import scene_add, scene_update
from planner.services.takes import take_judge

DEMO_PROJECT = "Harbour lights teaser"
DEMO_SCENES = [
    # (scene fields, takes to launch, keepers to pick)
    (
        {"title": "Harbour at dawn", "model": "sora-2", "seconds": "8", "variants": "1",
         "prompt": "Wide shot of a fishing harbour at dawn, mist over the water, boats leaving"},
        4, 1,
    ),
    (
        {"title": "Lighthouse close-up", "model": "veo-3-1-fast", "seconds": "6", "quality": "1080p",
         "variants": "2", "prompt": "Slow push-in on a red lighthouse, waves breaking below"},
        5, 1,
    ),
    (
        {"title": "Closing title over waves", "model": "luma-ray2-flash", "seconds": "5", "variants": "1",
         "prompt": "Dark waves at night under a sweeping beam of light, room for a title"},
        0, 0,
    ),
]  # fmt: skip


def seed_planner_demo(teams: list[Team]) -> Project | None:
    team = next((t for t in teams if t.slug == "northwind"), None)
    if team is None or Project.objects.filter(team=team, name=DEMO_PROJECT).exists():
        return None
    producer = Membership.objects.get(team=team, role=Role.PRODUCER, user__email="producer@demo.keter")
    lead = Membership.objects.get(team=team, role=Role.LEAD, user__email="lead@demo.keter")
    ctx = pricing_context(team)
    project = project_create(
        by=producer,
        name=DEMO_PROJECT,
        goal="A 20-second teaser for the harbour festival.",
        usage="Social media and the festival website",
        contingency_percent=10,
    )
    scenes = []
    for fields, takes, keepers in DEMO_SCENES:
        scene = scene_add(project=project, ctx=ctx).scene
        scenes.append((scene_update(scene=scene, data=fields, ctx=ctx).scene, takes, keepers))
    budget_approve(version=budget_submit(project=project, by=producer), by=lead, basis="planned")
    rng = random.Random(2025)  # picked so each rendered scene has two successful takes
    for scene, takes, _ in scenes:
        if takes:
            queue_launch_scene(scene=scene, by=producer, takes=takes, ctx=ctx, rng=rng)
    _render_everything(team)
    for scene, _, keepers in scenes:
        # The first successes become keepers; the rest wait for the producer to judge them.
        for take in scene.jobs.filter(state=Job.State.SUCCEEDED).order_by("take_number")[:keepers]:
            take_judge(job=take, by=producer, verdict="keeper")
    return project


def _render_everything(team: Team) -> None:
    """What the workers would do, without the wait: take the slots in order and settle each job."""
    queue_dispatch(team_id=team.id, send=False)
    while running := list(
        Job.objects.filter(team=team, state=Job.State.RUNNING).values_list("id", flat=True)
    ):
        for job_id in running:
            job_run(job_id=job_id, sleep=lambda seconds: None, send=False)
