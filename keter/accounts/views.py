from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from keter.accounts import services
from keter.accounts.decorators import team_view
from keter.accounts.forms import MemberAddForm, MemberRoleForm, TeamAlertsForm
from keter.accounts.models import Membership
from keter.errors import DomainError
from keter.forms import add_domain_error


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a signed-in person to the team they used last, or their first team."""
    memberships = request.user.memberships.select_related("team").order_by("team__name")
    last = request.session.get("team_slug")
    chosen = next((m for m in memberships if m.team.slug == last), None) or memberships.first()
    if chosen is None:
        return render(request, "accounts/no_team.html")
    return redirect("planner:dashboard", chosen.team.slug)


def _team_page(request, *, add_form=None, role_errors=None, alerts_form=None, status=200) -> HttpResponse:
    members = request.team.memberships.select_related("user").order_by("user__email")
    context = {
        "members": members,
        "add_form": add_form or MemberAddForm(),
        "alerts_form": alerts_form
        or TeamAlertsForm(initial={"low_balance_threshold": request.team.low_balance_threshold}),
        "role_errors": role_errors or {},
        "can_manage": request.membership.can("team.manage"),
        "roles": MemberRoleForm.base_fields["role"].choices,
    }
    return render(request, "accounts/team.html", context, status=status)


@require_GET
@team_view("team.view")
def team(request: HttpRequest) -> HttpResponse:
    return _team_page(request)


@require_POST
@team_view("team.manage")
def member_add(request: HttpRequest) -> HttpResponse:
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = services.membership_add(team=request.team, request=request, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, f"{membership.user.email} joined as {membership.get_role_display()}.")
            return redirect("accounts:team", request.team.slug)
    return _team_page(request, add_form=form, status=422)


@require_POST
@team_view("team.manage")
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, id=membership_id, team=request.team)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(membership=membership, role=form.cleaned_data["role"])
        except DomainError as error:
            return _team_page(request, role_errors={membership.id: error.message}, status=422)
        messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
        return redirect("accounts:team", request.team.slug)
    return _team_page(request, role_errors={membership.id: "Choose one of the listed roles"}, status=422)


@require_POST
@team_view("team.manage")
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, id=membership_id, team=request.team)
    try:
        services.membership_remove(membership=membership)
    except DomainError as error:
        return _team_page(request, role_errors={membership.id: error.message}, status=422)
    messages.success(request, f"{membership.user.email} was removed from {request.team.name}.")
    return redirect("accounts:team", request.team.slug)


@require_POST
@team_view("team.manage")
def team_alerts(request: HttpRequest) -> HttpResponse:
    form = TeamAlertsForm(request.POST)
    if not form.is_valid():
        return _team_page(request, alerts_form=form, status=422)
    services.team_set_alerts(team=request.team, **form.cleaned_data)
    threshold = form.cleaned_data["low_balance_threshold"]
    messages.success(
        request, f"Low-balance alert set to {threshold:,} credits." if threshold else "Alert off."
    )
    return redirect("accounts:team", request.team.slug)
