from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from keter.accounts.decorators import team_view
from planner.forms import SceneImportForm
from planner.pricing import pricing_context
from planner.scene_csv import ImportRefused, export_rows
from planner.scene_csv import scenes_import as import_scenes
from planner.selectors import editor_scenes
from planner.views.projects import team_project


@require_GET
@team_view("project.view")
def scenes_export(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    rows = export_rows(editor_scenes(project).iterator(chunk_size=500))
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{slugify(project.name) or "project"}-scenes.csv"'
    )
    return response


@require_http_methods(["GET", "POST"])
@team_view("project.edit")
def scenes_import(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    # Bound on every POST, even an empty one, so a missing file is reported rather than ignored.
    form = SceneImportForm(request.POST, request.FILES) if request.method == "POST" else SceneImportForm()
    context = {"project": project, "form": form, "errors": []}
    if request.method == "POST" and form.is_valid():
        try:
            scenes = import_scenes(
                project=project, raw=form.cleaned_data["file"].read(), ctx=pricing_context(request.team)
            )
        except ImportRefused as refused:
            context |= {"errors": refused.errors, "summary": refused.message}
            return render(request, "planner/scene_import.html", context, status=422)
        messages.success(request, f"Imported {len(scenes)} scene{'s' if len(scenes) != 1 else ''}.")
        return redirect("planner:project", request.team.slug, project.id)
    status = 422 if request.method == "POST" else 200
    return render(request, "planner/scene_import.html", context, status=status)
