from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from keter.accounts.decorators import team_view
from planner.selectors import projects_with_totals


@require_GET
@team_view("dashboard.view")
def dashboard(request: HttpRequest) -> HttpResponse:
    """The team's home: plan and role now; balance, projects, approvals and queue as they arrive."""
    context = {
        "plan": request.team.plan,
        "active_projects": projects_with_totals(request.team, status="active")[:8],
        "can_edit": request.membership.can("project.edit"),
    }
    return render(request, "planner/dashboard.html", context)
