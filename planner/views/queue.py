"""The generation queue's pages: the team's line (live by htmx polling), launching takes, cancelling a
waiting take, and each scene's takes with keeper and reject."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from keter.accounts.decorators import team_view
from keter.errors import DomainError
from planner.models import Job, Project
from planner.pricing import pricing_context
from planner.queue_selectors import attach_takes, queue_view, remaining_planned_takes, scene_jobs
from planner.services.queue import LAUNCHABLE, MAX_TAKES_PER_LAUNCH, Launch, queue_cancel
from planner.services.queue import queue_launch_plan as launch_plan_service
from planner.services.queue import queue_launch_scene as launch_scene_service
from planner.services.takes import take_judge as take_judge_service
from planner.views.projects import team_project
from planner.views.scenes import team_scene


def _project_filter(request: HttpRequest) -> Project | None:
    raw = request.GET.get("project", "")
    if not raw.isdigit():
        return None
    return Project.objects.filter(team=request.team, id=int(raw)).first()


def _board_context(request: HttpRequest) -> dict:
    project = _project_filter(request)
    return {
        "board": queue_view(request.team, project_id=project.id if project else None),
        "project_filter": project,
        "can_launch": request.membership.can("queue.launch"),
    }


@require_GET
@team_view("queue.view")
def queue_page(request: HttpRequest) -> HttpResponse:
    """The team's line and latest finished jobs; the board polls itself every 2 s (htmx)."""
    context = _board_context(request)
    if request.htmx:
        return render(request, "planner/queue.html#queue-board", context)
    projects = request.team.projects.filter(jobs__isnull=False).distinct().order_by("name")
    return render(request, "planner/queue.html", context | {"projects": projects})


@require_POST
@team_view("queue.launch")
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(
        Job.objects.select_related("project__budget_hold", "hold", "scene"), id=job_id, team=request.team
    )
    try:
        queue_cancel(job=job, by=request.membership)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"Take {job.take_number} of “{job.scene}” cancelled: {job.credits:,} credits returned."
        )
    if request.htmx:
        return render(request, "planner/queue.html#queue-board", _board_context(request))
    return redirect(_back(request, reverse("planner:queue", args=[request.team.slug])))


def _back(request: HttpRequest, default: str) -> str:
    """Where a form asked to go back to, if it is one of our own pages (never another site)."""
    target = request.POST.get("next", "")
    return target if target.startswith(f"/t/{request.team.slug}/") and "//" not in target else default


def _parse_takes(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError
    return int(raw)


def _launched(request: HttpRequest, launch: Launch) -> None:
    n = len(launch.jobs)
    text = f"Launched {n} take{'s' if n != 1 else ''} for {launch.credits:,} credits"
    if launch.is_waiting_for_broker:
        messages.warning(
            request,
            f"{text}. They wait in the queue: the render workers cannot be reached right now, and the takes "
            "start by themselves when they are back.",
        )
    else:
        messages.success(request, f"{text}.")
    for note in launch.skipped:
        messages.info(request, note)


@require_POST
@team_view("queue.launch")
def scene_launch(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    back = _back(request, reverse("planner:scene-takes", args=[request.team.slug, project_id, scene_id]))
    try:
        takes = _parse_takes(request.POST.get("takes", ""))
    except ValueError:
        messages.error(request, f"Enter a whole number of takes between 1 and {MAX_TAKES_PER_LAUNCH}.")
        return redirect(back)
    try:
        launch = launch_scene_service(
            scene=scene, by=request.membership, takes=takes, ctx=pricing_context(request.team)
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        _launched(request, launch)
    return redirect(back)


@require_POST
@team_view("queue.launch")
def plan_launch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    try:
        launch = launch_plan_service(
            project=project, by=request.membership, ctx=pricing_context(request.team)
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("planner:project", request.team.slug, project.id)
    _launched(request, launch)
    return redirect(f"{reverse('planner:queue', args=[request.team.slug])}?project={project.id}")


def _takes_context(request: HttpRequest, scene) -> dict:
    attach_takes([scene])
    jobs = list(scene_jobs(scene))
    project = scene.project
    return {
        "project": project,
        "scene": scene,
        "takes": [job for job in jobs if job.state == Job.State.SUCCEEDED],
        "other_jobs": [job for job in jobs if job.state != Job.State.SUCCEEDED],
        "default_takes": max(remaining_planned_takes(scene, scene.takes), 1),
        "can_launch": request.membership.can("queue.launch"),
        "is_launchable": project.status in LAUNCHABLE and project.budget_hold_id is not None,
        "max_takes": MAX_TAKES_PER_LAUNCH,
        "verdict_buttons": [(Job.Verdict.KEEPER, "Keeper"), (Job.Verdict.REJECTED, "Reject")],
    }


@require_GET
@team_view("queue.view")
def scene_takes(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    context = _takes_context(request, scene)
    template = "planner/scene_takes.html#takes-panel" if request.htmx else "planner/scene_takes.html"
    return render(request, template, context)


@require_POST
@team_view("queue.launch")
def take_judge(request: HttpRequest, project_id: int, scene_id: int, job_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    job = get_object_or_404(Job, id=job_id, scene=scene, team=request.team)
    status = 200
    try:
        take_judge_service(job=job, by=request.membership, verdict=request.POST.get("verdict", ""))
    except DomainError as error:
        messages.error(request, error.message)
        status = 422
    if request.htmx:
        context = _takes_context(request, scene)
        return render(request, "planner/scene_takes.html#takes-panel", context, status=status)
    return redirect("planner:scene-takes", request.team.slug, project_id, scene_id)
