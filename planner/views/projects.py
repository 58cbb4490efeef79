from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from keter.accounts.decorators import team_view
from planner.forms import ProjectForm
from planner.models import Project
from planner.selectors import projects_with_totals
from planner.services.projects import project_create, project_update


def team_project(request: HttpRequest, project_id: int) -> Project:
    """The project if it belongs to the request's team; another team's id is a 404."""
    return get_object_or_404(Project.objects.select_related("responsible"), id=project_id, team=request.team)


@require_GET
@team_view("project.view")
def project_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status and status != "active" and status not in Project.Status.values:
        status = ""
    rows = projects_with_totals(request.team, status=status)
    context = {
        "rows": rows,
        "status": status,
        "statuses": Project.Status.choices,
        "can_edit": request.membership.can("project.edit"),
    }
    return render(request, "planner/project_list.html", context)


@require_http_methods(["GET", "POST"])
@team_view("project.edit")
def project_new(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST if request.method == "POST" else None, team=request.team)
    if request.method == "POST" and form.is_valid():
        project = project_create(by=request.membership, **form.cleaned_data)
        messages.success(request, f"Project “{project.name}” created. Add its first scene.")
        return redirect("planner:project", request.team.slug, project.id)
    status = 422 if request.method == "POST" else 200
    return render(request, "planner/project_form.html", {"form": form, "project": None}, status=status)


@require_http_methods(["GET", "POST"])
@team_view("project.edit")
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    form = ProjectForm(
        request.POST if request.method == "POST" else None, instance=project, team=request.team
    )
    if request.method == "POST" and form.is_valid():
        project_update(project=project, **form.cleaned_data)
        messages.success(request, "Project brief saved.")
        return redirect("planner:project", request.team.slug, project.id)
    status = 422 if request.method == "POST" else 200
    return render(request, "planner/project_form.html", {"form": form, "project": project}, status=status)
