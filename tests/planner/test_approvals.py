import pytest
from django.core import mail
from django.urls import reverse

from keter.accounts.roles import Role
from ledger.models import Hold
from ledger.selectors import team_balance
from ledger.services import ledger_top_up
from planner.models import AuditEvent, BudgetVersion, Notification, Project
from planner.selectors import approved_budget
from planner.services.approvals import (
    ApprovalError,
    ApprovalShortfall,
    budget_approve,
    budget_reject,
    budget_send_back,
    budget_submit,
    project_cancel,
    project_deliver,
)
from planner.services.scenes import scene_update


@pytest.fixture
def funded(demo):
    """Northwind with 5,000 purchased credits and nothing else."""
    ledger_top_up(team=demo, credits=5000, key="test:top-up:1", reference="test")
    return demo


@pytest.fixture
def submitted(project, make_scene, member, funded):
    # sora-2 8 s = 80 a take; 3 planned takes = 240; +10% contingency = 264.
    make_scene(model="sora-2", seconds=8, planned_takes_override=3)
    return budget_submit(project=project, by=member(Role.PRODUCER))


def test_submitting_freezes_the_scene_list_and_its_estimate(submitted, project):
    assert (submitted.number, submitted.kind, submitted.status) == (1, "original", "pending")
    assert (submitted.planned_credits, submitted.contingency_credits, submitted.total_credits) == (
        240,
        24,
        264,
    )
    assert [(line.model_slug, line.planned_credits) for line in submitted.lines.all()] == [("sora-2", 240)]
    project.refresh_from_db()
    assert project.status == Project.Status.SUBMITTED
    assert AuditEvent.objects.filter(project=project, kind="submitted").exists()


def test_the_leads_hear_about_a_submission_in_the_app_and_by_email(
    submitted, member, django_capture_on_commit_callbacks
):
    recipients = set(
        Notification.objects.filter(dedupe_key=f"submitted:{submitted.id}").values_list(
            "recipient__email", flat=True
        )
    )
    assert {"lead@demo.keter", "owner@demo.keter"} <= recipients


def test_a_project_with_invalid_or_no_scenes_cannot_be_submitted(project, make_scene, member, ctx):
    with pytest.raises(ApprovalError, match="at least one scene"):
        budget_submit(project=project, by=member(Role.PRODUCER))
    scene = make_scene(model="sora-2", seconds=8)
    scene_update(scene=scene, data={"seconds": "9"}, ctx=ctx)
    with pytest.raises(ApprovalError, match="1 scene needs fixing"):
        budget_submit(project=project, by=member(Role.PRODUCER))


def test_a_second_submission_waits_for_the_first(submitted, project, member):
    with pytest.raises(ApprovalError, match="already has a budget waiting"):
        budget_submit(project=project, by=member(Role.PRODUCER))


def test_approval_at_the_planned_figure_holds_exactly_that_from_the_team(submitted, member, funded, project):
    before = team_balance(funded)
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")
    after = team_balance(funded)
    assert (before.available - after.available, after.held - before.held) == (264, 264)
    submitted.refresh_from_db()
    project.refresh_from_db()
    assert (submitted.status, submitted.approved_credits, project.status) == ("approved", 264, "approved")
    assert project.budget_hold.credits == 264 and project.budget_hold.reference == f"project:{project.id}"
    assert (approved_budget(project).original, project.approved_version) == (264, 1)


def test_approval_at_the_expected_figure_or_a_typed_amount(submitted, member, project):
    expected = submitted.requested_for("expected")
    # 229 expected + 10% rounded up (22.9 -> 23): rounding never loses a credit.
    assert (submitted.expected_credits, expected) == (229, 252)
    budget_approve(version=submitted, by=member(Role.OWNER), basis="custom", credits=200)
    project.refresh_from_db()
    assert project.budget_hold.credits == 200


def test_nobody_approves_their_own_submission(submitted, member, funded):
    with pytest.raises(ApprovalError, match="You submitted this budget"):
        budget_approve(version=submitted, by=member(Role.PRODUCER), basis="planned")
    assert team_balance(funded).held == 0


def test_an_owner_who_submitted_cannot_approve_it_either(project, make_scene, member, funded):
    make_scene(model="sora-2", seconds=8)
    version = budget_submit(project=project, by=member(Role.OWNER))
    with pytest.raises(ApprovalError, match="You submitted this budget"):
        budget_approve(version=version, by=member(Role.OWNER), basis="planned")
    budget_approve(version=version, by=member(Role.LEAD), basis="planned")


def test_approving_twice_holds_once(submitted, member, funded):
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")
    with pytest.raises(ApprovalError, match="already decided"):
        budget_approve(version=submitted, by=member(Role.OWNER), basis="planned")
    assert team_balance(funded).held == 264
    assert Hold.objects.filter(team=funded).count() == 1


def test_a_shortfall_is_refused_with_the_numbers_and_nothing_is_written(project, make_scene, member, demo):
    ledger_top_up(team=demo, credits=1000, key="test:small", reference="test")
    make_scene(model="sora-2", seconds=12, planned_takes_override=10)  # 1,200 + 10% = 1,320
    version = budget_submit(project=project, by=member(Role.PRODUCER))
    with pytest.raises(ApprovalShortfall) as short:
        budget_approve(version=version, by=member(Role.LEAD), basis="planned")
    assert (short.value.available, short.value.needed, short.value.shortfall) == (1000, 1320, 320)
    assert "Top up at least 1,000 credits, or approve at most 1,000" in short.value.message
    version.refresh_from_db()
    assert version.status == "pending" and team_balance(demo).held == 0
    # After a top-up the same approval goes through.
    ledger_top_up(team=demo, credits=1000, key="test:more", reference="test")
    budget_approve(version=version, by=member(Role.LEAD), basis="planned")
    assert team_balance(demo).held == 1320


def test_a_custom_amount_must_be_a_positive_whole_number(submitted, member):
    for credits in (None, 0, -5, 10**12):
        with pytest.raises(ApprovalError, match="Type an amount between 1 and"):
            budget_approve(version=submitted, by=member(Role.LEAD), basis="custom", credits=credits)


def test_edits_past_the_approved_budget_need_a_change_order_that_adds_to_the_hold(
    submitted, member, project, ctx, funded
):
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")  # 264
    scene = project.scenes.get()
    scene_update(scene=scene, data={"planned_takes_override": "5"}, ctx=ctx)  # 400 + 40 = 440
    from planner.views.scenes import project_totals

    assert project_totals(project).total_credits == 440
    with pytest.raises(ApprovalError, match="Say why"):
        budget_submit(project=project, by=member(Role.PRODUCER))
    change = budget_submit(project=project, by=member(Role.PRODUCER), reason="Client wants two more takes")
    assert (change.kind, change.number, change.approved_before, change.requested_credits) == (
        "change_order",
        2,
        264,
        176,
    )
    budget_approve(version=change, by=member(Role.LEAD), basis="planned")
    project.refresh_from_db()
    budget = approved_budget(project)
    assert (budget.original, budget.change_orders, budget.final) == (264, 176, 440)
    project.refresh_from_db()
    assert project.budget_hold.credits == 440 and team_balance(funded).held == 440


def test_a_plan_that_fits_the_budget_needs_no_change_order(submitted, member, project):
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")
    with pytest.raises(ApprovalError, match="no change order is needed"):
        budget_submit(project=project, by=member(Role.PRODUCER), reason="just because")


def test_rejection_needs_a_comment_and_returns_the_project_to_draft(submitted, member, project, funded):
    with pytest.raises(ApprovalError, match="Say why you reject it"):
        budget_reject(version=submitted, by=member(Role.LEAD), comment=" ")
    budget_reject(version=submitted, by=member(Role.LEAD), comment="Too many takes")
    project.refresh_from_db()
    assert project.status == "draft" and team_balance(funded).held == 0
    assert Notification.objects.filter(
        dedupe_key=f"decided:{submitted.id}", recipient__email="producer@demo.keter"
    ).exists()


def test_send_back_lets_the_producer_submit_again(submitted, member, project):
    budget_send_back(version=submitted, by=member(Role.LEAD), comment="Shorter please")
    again = budget_submit(project=project, by=member(Role.PRODUCER))
    assert (again.number, again.kind) == (2, "original")


def test_cancelling_an_approved_project_releases_its_hold(submitted, member, project, funded):
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")
    with pytest.raises(ApprovalError, match="Say why"):
        project_cancel(project=project, by=member(Role.LEAD), comment="")
    project_cancel(project=project, by=member(Role.LEAD), comment="Client pulled out")
    project.refresh_from_db()
    assert project.status == "archived" and project.budget_hold.status == "voided"
    assert team_balance(funded).held == 0 and team_balance(funded).available == 5000
    assert AuditEvent.objects.filter(project=project, kind="hold_released", credits=264).exists()


def test_delivering_closes_the_hold_and_returns_the_unspent_credits(submitted, member, project, funded):
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")
    project_deliver(project=project, by=member(Role.PRODUCER))
    project.refresh_from_db()
    assert project.status == "delivered" and project.budget_hold.status == "posted"
    assert team_balance(funded).available == 5000
    with pytest.raises(ApprovalError, match="already delivered"):
        project_deliver(project=project, by=member(Role.PRODUCER))


def test_a_low_balance_alert_fires_once_below_the_owners_threshold(submitted, member, funded):
    funded.low_balance_threshold = 4900
    funded.save()
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")  # 5,000 - 264 < 4,900
    alerts = Notification.objects.filter(dedupe_key__startswith="low-balance:")
    assert set(alerts.values_list("recipient__email", flat=True)) == {"owner@demo.keter", "lead@demo.keter"}
    from planner.services.budget_alerts import balance_alert_check

    assert balance_alert_check(team=funded) is False  # already told
    assert alerts.count() == 2


def test_the_alert_emails_go_out_through_djangos_mail_backend(
    project, make_scene, member, funded, django_capture_on_commit_callbacks
):
    make_scene(model="sora-2", seconds=8)
    with django_capture_on_commit_callbacks(execute=True):
        budget_submit(project=project, by=member(Role.PRODUCER))
    assert {to for m in mail.outbox for to in m.to} >= {"lead@demo.keter", "owner@demo.keter"}


# Views ---------------------------------------------------------------------------------------------------


def version_url(name, version):
    return reverse(name, args=[version.project.team.slug, version.id])


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_inbox_and_the_submission(client_as, submitted, role):
    client = client_as(role)
    inbox = client.get(reverse("planner:approvals", args=["northwind"]))
    assert inbox.status_code == 200 and "Spring campaign" in inbox.content.decode()
    detail = client.get(version_url("planner:approval", submitted)).content.decode()
    assert ("Approve and reserve" in detail) == (role in {Role.OWNER, Role.LEAD})


@pytest.mark.parametrize("role", [Role.PRODUCER, Role.FINANCE, Role.VIEWER])
def test_only_leads_and_owners_may_decide(client_as, submitted, role, funded):
    client = client_as(role)
    for name in ("planner:approval-approve", "planner:approval-reject", "planner:approval-send-back"):
        assert (
            client.post(version_url(name, submitted), {"basis": "planned", "comment": "x"}).status_code == 403
        )
    submitted.refresh_from_db()
    assert submitted.status == "pending" and team_balance(funded).held == 0


def test_another_teams_approvals_are_404(client_as, submitted, other_team):
    from keter.accounts.models import Membership

    client = client_as(Role.LEAD)
    client.force_login(Membership.objects.get(team=other_team, role=Role.OWNER).user)
    assert client.get(reverse("planner:approval", args=["northwind", submitted.id])).status_code == 404
    assert client.get(reverse("planner:approval", args=[other_team.slug, submitted.id])).status_code == 404
    assert (
        client.post(
            reverse("planner:approval-approve", args=[other_team.slug, submitted.id]), {"basis": "planned"}
        ).status_code
        == 404
    )


def test_a_lead_approves_from_the_page_and_the_balance_drops_by_the_hold(client_as, submitted, funded):
    response = client_as(Role.LEAD).post(
        version_url("planner:approval-approve", submitted), {"basis": "planned"}
    )
    assert response.status_code == 302
    assert team_balance(funded).available == 5000 - 264


@pytest.mark.parametrize(
    "data, message",
    [
        ({"basis": "custom"}, "Type the amount to approve"),
        ({"basis": "custom", "credits": "lots"}, "whole credits"),
        ({"basis": "custom", "credits": "-3"}, "at least 1 credit"),
        ({"basis": "everything"}, "Select a valid choice"),
    ],
)
def test_bad_approval_input_is_explained_and_nothing_is_held(client_as, submitted, funded, data, message):
    response = client_as(Role.LEAD).post(version_url("planner:approval-approve", submitted), data)
    assert response.status_code == 422 and message in response.content.decode()
    assert team_balance(funded).held == 0


def test_the_shortfall_is_shown_on_the_page(client_as, project, make_scene, member, demo):
    make_scene(model="sora-2", seconds=12, planned_takes_override=10)
    version = budget_submit(project=project, by=member(Role.PRODUCER))
    response = client_as(Role.LEAD).post(
        version_url("planner:approval-approve", version), {"basis": "planned"}
    )
    assert response.status_code == 422
    assert (
        "Only 0 credits are available and this approval needs 1,320: 1,320 short" in response.content.decode()
    )


def test_reject_without_a_comment_keeps_the_submission_pending(client_as, submitted):
    response = client_as(Role.LEAD).post(version_url("planner:approval-reject", submitted), {"comment": ""})
    assert response.status_code == 422 and "Say why" in response.content.decode()
    submitted.refresh_from_db()
    assert submitted.status == BudgetVersion.Status.PENDING


def test_the_project_page_shows_original_change_orders_final_and_the_timeline(
    client_as, submitted, member, project, ctx
):
    budget_approve(version=submitted, by=member(Role.LEAD), basis="planned")
    scene_update(scene=project.scenes.get(), data={"planned_takes_override": "5"}, ctx=ctx)
    page = (
        client_as(Role.PRODUCER)
        .get(reverse("planner:project", args=["northwind", project.id]))
        .content.decode()
    )
    assert "Over budget — needs a change order" in page and "176" in page
    change = budget_submit(project=project, by=member(Role.PRODUCER), reason="More takes")
    budget_approve(version=change, by=member(Role.LEAD), basis="planned")
    page = (
        client_as(Role.VIEWER)
        .get(reverse("planner:project", args=["northwind", project.id]))
        .content.decode()
    )
    assert 'data-total="approved">440<' in page and "264 + 176" in page
    assert "Credits reserved" in page and "Reservation extended" in page and "Change order submitted" in page
