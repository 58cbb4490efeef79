"""The scene-list editor. Every write answers with out-of-band swaps of the scene's cost cell, its messages
and the totals box, so the field being typed in is never replaced (see STYLE.md, live totals)."""

import dataclasses
import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from keter.accounts.decorators import team_view
from keter.errors import DomainError
from ledger.selectors import team_available
from planner import costing, selectors
from planner.forms import AUDIO_CHOICES, WhatIfForm
from planner.models import BudgetVersion, Project, Scene
from planner.pricing import pricing_context, scene_pricing_context
from planner.queue_selectors import attach_takes, project_readiness
from planner.selectors import approved_budget, editor_scenes, project_spend, project_totals
from planner.services import scenes as scene_services
from planner.services.queue import LAUNCHABLE
from planner.services.whatif import whatif_apply as whatif_apply_service
from planner.services.whatif import whatif_preview
from planner.views.projects import team_project

# Every message slot a scene row may have (an option's only where the model offers it); each response empties
# or fills them all. Engine fields no row shows (credits, success_rate) would be swaps with no target.
SCENE_FIELDS_WITH_ERRORS = [
    "title", "prompt", "seconds", "model", "quality", "audio", "fast_motion", "hdr", "upscale_4k",
    "sound_effects", "references", "image_refs", "video_refs", "reference_links", "variants",
    "planned_takes_override", "notes",
]  # fmt: skip


def team_scene(request: HttpRequest, project_id: int, scene_id: int) -> Scene:
    """The scene (with its project) if it belongs to the request's team; another team's id is a 404."""
    scene = selectors.team_scene(team=request.team, project_id=project_id, scene_id=scene_id)
    if scene is None:
        raise Http404("No such scene")
    return scene


def budget_figures(request: HttpRequest, project: Project, *, with_balance: bool = True) -> dict:
    """What the totals box shows: the estimate next to the approved budget (and the team's balance)."""
    budget = approved_budget(project)
    totals = dataclasses.replace(
        project_totals(project),
        approved_budget=budget.final if budget.original is not None else None,
        available_credits=team_available(request.team) if with_balance else None,
    )
    return {"totals": totals, "budget": budget}


def editor_context(request: HttpRequest, project: Project, ctx=None) -> dict:
    ctx = ctx or pricing_context(request.team)
    return budget_figures(request, project) | {
        "project": project,
        "can_edit": request.membership.can("project.edit"),
        "can_launch": request.membership.can("queue.launch"),
        "is_launchable": project.status in LAUNCHABLE and project.budget_hold_id is not None,
        "pricing": ctx,
        "catalog": ctx.catalog,
        "models": [e for e in ctx.catalog if e.model.is_active],
        "audio_choices": AUDIO_CHOICES,
        "statuses": Scene.Status.choices,
        "whatif_qualities": [
            q for q in costing.QUALITY_ORDER if any(q in e.spec.qualities for e in ctx.catalog)
        ],
    }


@require_GET
@team_view("project.view")
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    ctx = pricing_context(request.team)
    # Prices, plan and learned rates may have moved since the scenes were saved.
    scenes = attach_takes(scene_services.project_reprice(project=project, ctx=ctx))
    context = editor_context(request, project, ctx)
    if project.budget_hold_id is not None:
        spend = project_spend(project)
        context |= {
            "spend": spend,
            "readiness": project_readiness(
                project, scenes, budget=context["budget"].final, spent=spend.actual, committed=spend.committed
            ),
        }
    context |= {
        "scenes": scenes,
        "pending_version": project.budget_versions.filter(status=BudgetVersion.Status.PENDING).first(),
        "timeline": project.audit_events.select_related("actor", "version")[:50],
        "can_submit": request.membership.can("project.submit"),
        "can_decide": request.membership.can("approval.decide"),
    }
    return render(request, "planner/project_detail.html", context)


def _scene_response(request, change, ctx, *, status=200) -> HttpResponse:
    """The out-of-band pieces for one scene: cost cell, state, messages and the totals box.

    Only what the `scene-oob` partial renders: `ctx` may hold just the scene's models, so no model list.
    """
    project = change.scene.project
    context = budget_figures(request, project, with_balance=False) | {
        "project": project,
        "pricing": ctx,
        "catalog": ctx.catalog,
        "audio_choices": AUDIO_CHOICES,
        "scene": change.scene,
        "errors": change.errors,
        "model_changed": change.model_changed,
        "error_slots": [(name, change.errors.get(name, "")) for name in SCENE_FIELDS_WITH_ERRORS],
    }
    return render(request, "planner/project_detail.html#scene-oob", context, status=status)


@require_POST
@team_view("project.edit")
def scene_update(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    found = scene_pricing_context(request.team, project_id=project_id, scene_id=scene_id, data=request.POST)
    if found is None:
        raise Http404("No such scene")
    scene, ctx = found
    change = scene_services.scene_update(scene=scene, data=request.POST, ctx=ctx)
    if not request.htmx:
        return redirect("planner:project", request.team.slug, project_id)
    return _scene_response(request, change, ctx, status=422 if change.errors else 200)


def _list_response(request: HttpRequest, project: Project) -> HttpResponse:
    if not request.htmx:
        return redirect("planner:project", request.team.slug, project.id)
    context = editor_context(request, project) | {"scenes": attach_takes(list(editor_scenes(project)))}
    return render(request, "planner/project_detail.html#scene-list-oob", context)


@require_POST
@team_view("project.edit")
def scene_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    scene_services.scene_add(project=project, ctx=pricing_context(request.team))
    return _list_response(request, project)


@require_POST
@team_view("project.edit")
def scene_duplicate(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    scene_services.scene_duplicate(scene=scene)
    return _list_response(request, scene.project)


@require_POST
@team_view("project.edit")
def scene_delete(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    scene_services.scene_delete(scene=scene)
    if not request.htmx:
        return redirect("planner:project", request.team.slug, project_id)
    context = editor_context(request, scene.project) | {"scene": scene}
    return render(request, "planner/project_detail.html#scene-deleted", context)


@require_POST
@team_view("project.edit")
def scene_restore(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    scene_services.scene_restore(scene=scene)
    return _list_response(request, scene.project)


@require_POST
@team_view("project.edit")
def scene_move(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    scene = team_scene(request, project_id, scene_id)
    direction = request.POST.get("direction")
    if direction not in {"up", "down"}:
        return HttpResponse("direction must be up or down", status=400)
    scene_services.scene_move(scene=scene, direction=direction)
    return _list_response(request, scene.project)


@require_POST
@team_view("project.edit")
def scenes_reorder(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    try:
        ids = [int(i) for i in request.POST.getlist("scene")]
        scene_services.scenes_reorder(project=project, scene_ids=ids)
    except ValueError:
        return HttpResponse("scene ids must be numbers", status=400)
    except DomainError as error:
        response = HttpResponse(error.message, status=409)
        response["HX-Trigger"] = json.dumps({"keter:error": error.message})
        return response
    return HttpResponse(status=204)


def _whatif_args(request: HttpRequest, form) -> dict:
    ids = (
        None
        if form.cleaned_data["all"]
        else [int(i) for i in request.POST.getlist("whatif_scene") if i.isdigit()]
    )
    return {
        "scene_ids": ids,
        "model": form.cleaned_data["model"],
        "quality": form.cleaned_data["quality"],
        "seconds": form.cleaned_data["seconds"],
    }


@require_POST
@team_view("project.edit")
def whatif(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    form = WhatIfForm(request.POST)
    context = {"project": project, "form": form}
    if form.is_valid():
        try:
            args = _whatif_args(request, form)
            context |= {"result": whatif_preview(project=project, ctx=pricing_context(request.team), **args)}
            context |= {"args": args}
        except DomainError as error:
            context["error"] = error.message
    else:
        context["error"] = " ".join(m for messages in form.errors.values() for m in messages)
    return render(request, "planner/whatif_result.html", context, status=422 if "error" in context else 200)


@require_POST
@team_view("project.edit")
def whatif_apply(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    form = WhatIfForm(request.POST)
    if not form.is_valid():
        return HttpResponse(" ".join(m for ms in form.errors.values() for m in ms), status=422)
    try:
        scenes = whatif_apply_service(
            project=project, ctx=pricing_context(request.team), **_whatif_args(request, form)
        )
    except DomainError as error:
        return HttpResponse(error.message, status=422)
    messages.success(request, f"Applied to {len(scenes)} scene{'s' if len(scenes) != 1 else ''}.")
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return redirect("planner:project", request.team.slug, project.id)
