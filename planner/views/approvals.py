from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from keter.accounts.decorators import team_view
from keter.errors import DomainError
from ledger.selectors import team_balance
from planner.forms import ApprovalDecisionForm, CommentForm, SubmitForm
from planner.models import BudgetVersion
from planner.selectors import approved_budget, budget_diff
from planner.services import approvals
from planner.views.projects import team_project


def team_version(request: HttpRequest, version_id: int) -> BudgetVersion:
    return get_object_or_404(
        BudgetVersion.objects.select_related(
            "project__team", "project__responsible", "submitted_by", "decided_by"
        ),
        id=version_id,
        project__team=request.team,
    )


@require_GET
@team_view("approval.view")
def inbox(request: HttpRequest) -> HttpResponse:
    versions = BudgetVersion.objects.filter(project__team=request.team).select_related(
        "project", "submitted_by", "decided_by"
    )
    context = {
        "pending": versions.filter(status=BudgetVersion.Status.PENDING).order_by("submitted_at"),
        "decided": versions.exclude(status=BudgetVersion.Status.PENDING).order_by("-decided_at")[:30],
        "balance": team_balance(request.team),
    }
    return render(request, "planner/approvals.html", context)


def _detail(request, version, *, form=None, comment_form=None, error=None, status=200) -> HttpResponse:
    context = {
        "version": version,
        "project": version.project,
        "diff": budget_diff(version),
        "budget": approved_budget(version.project),
        "balance": team_balance(request.team),
        "form": form or ApprovalDecisionForm(initial={"basis": "planned"}),
        "comment_form": comment_form or CommentForm(),
        "error": error,
        "can_decide": request.membership.can("approval.decide")
        and version.submitted_by_id != request.user.id,
        "is_own": version.submitted_by_id == request.user.id,
        "planned_amount": version.requested_for("planned"),
        "expected_amount": version.requested_for("expected"),
    }
    return render(request, "planner/approval_detail.html", context, status=status)


@require_GET
@team_view("approval.view")
def approval_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    return _detail(request, team_version(request, version_id))


@require_POST
@team_view("approval.decide")
def approve(request: HttpRequest, version_id: int) -> HttpResponse:
    version = team_version(request, version_id)
    form = ApprovalDecisionForm(request.POST)
    if form.is_valid():
        try:
            version = approvals.budget_approve(version=version, by=request.membership, **form.cleaned_data)
        except DomainError as error:
            return _detail(request, version, form=form, error=error, status=422)
        messages.success(request, f"Approved {version.approved_credits:,} credits; they are now reserved.")
        return redirect("planner:approvals", request.team.slug)
    return _detail(request, version, form=form, status=422)


def _decide_against(request, version_id: int, decide, done: str) -> HttpResponse:
    version = team_version(request, version_id)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            decide(version=version, by=request.membership, comment=form.cleaned_data["comment"])
        except DomainError as error:
            return _detail(request, version, comment_form=form, error=error, status=422)
        messages.success(request, done)
        return redirect("planner:approvals", request.team.slug)
    return _detail(request, version, comment_form=form, status=422)


@require_POST
@team_view("approval.decide")
def reject(request: HttpRequest, version_id: int) -> HttpResponse:
    return _decide_against(
        request, version_id, approvals.budget_reject, "Rejected; the producer has been told why."
    )


@require_POST
@team_view("approval.decide")
def send_back(request: HttpRequest, version_id: int) -> HttpResponse:
    return _decide_against(request, version_id, approvals.budget_send_back, "Sent back for changes.")


@require_POST
@team_view("project.submit")
def withdraw(request: HttpRequest, version_id: int) -> HttpResponse:
    version = team_version(request, version_id)
    try:
        approvals.budget_withdraw(version=version, by=request.membership)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Version {version.number} withdrawn.")
    return redirect("planner:project", request.team.slug, version.project_id)


@require_POST
@team_view("project.submit")
def submit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    form = SubmitForm(request.POST)
    if form.is_valid():
        try:
            version = approvals.budget_submit(project=project, by=request.membership, **form.cleaned_data)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Version {version.number} submitted: the leads have been told.")
    else:
        messages.error(request, " ".join(m for ms in form.errors.values() for m in ms))
    return redirect("planner:project", request.team.slug, project.id)


@require_POST
@team_view("approval.decide")
def cancel(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the project is cancelled.")
        return redirect("planner:project", request.team.slug, project.id)
    try:
        approvals.project_cancel(project=project, by=request.membership, comment=form.cleaned_data["comment"])
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Project cancelled; its unspent reservation went back to the team.")
    return redirect("planner:project", request.team.slug, project.id)


@require_POST
@team_view("project.submit")
def deliver(request: HttpRequest, project_id: int) -> HttpResponse:
    project = team_project(request, project_id)
    try:
        approvals.project_deliver(project=project, by=request.membership)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Delivered; what was not spent went back to the team.")
    return redirect("planner:project", request.team.slug, project.id)
