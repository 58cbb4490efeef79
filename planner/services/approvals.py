"""Budget approvals: submit a frozen baseline, decide on it, and reserve the approved credits in the ledger.

The ledger is told what to hold with a key per budget version (`hold:approval:<id>`), so approving twice
never holds twice; a refusal for short credits rolls back the whole decision, so it can be retried.
"""

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from keter.accounts.models import Membership
from keter.errors import DomainError
from ledger.errors import InsufficientCredits
from ledger.services import MIN_TOP_UP, ledger_close_hold, ledger_hold, ledger_hold_extend, ledger_void_hold
from planner.models import AuditEvent, BudgetLine, BudgetVersion, Project
from planner.selectors import approved_budget, project_totals
from planner.services.alerts import notify, notify_leads
from planner.services.budget_alerts import balance_alert_check
from planner.services.queue import queue_cancel_waiting

MAX_APPROVAL = 1_000_000_000


class ApprovalError(DomainError):
    pass


class ApprovalShortfall(ApprovalError):
    """Not enough available credits: says by how much, and what would cover it."""

    field = "credits"

    def __init__(self, *, available: int, needed: int):
        self.available, self.needed, self.shortfall = available, needed, needed - available
        top_up = max(MIN_TOP_UP, -(-self.shortfall // MIN_TOP_UP) * MIN_TOP_UP)
        super().__init__(
            f"Only {available:,} credits are available and this approval needs {needed:,}: "
            f"{self.shortfall:,} short. Top up at least {top_up:,} credits, or approve at most {available:,}."
        )


def _audit(project: Project, kind: str, *, actor=None, version=None, credits=None, comment="") -> AuditEvent:
    return AuditEvent.objects.create(
        team=project.team, project=project, version=version, actor=actor, kind=kind, credits=credits,
        comment=comment,
    )  # fmt: skip


def _project_url(project: Project) -> str:
    return reverse("planner:project", args=[project.team.slug, project.id])


@transaction.atomic
def budget_submit(*, project: Project, by: Membership, reason: str = "") -> BudgetVersion:
    """Freeze the scene list and its estimate as the next numbered version, waiting for a lead."""
    project = Project.objects.select_for_update(of=("self",)).select_related("team").get(pk=project.pk)
    if project.status in {Project.Status.DELIVERED, Project.Status.ARCHIVED}:
        raise ApprovalError(f"A {project.get_status_display().lower()} project cannot ask for a budget")
    if project.budget_versions.filter(status=BudgetVersion.Status.PENDING).exists():
        raise ApprovalError("This project already has a budget waiting for approval")
    totals = project_totals(project)
    if totals.scenes == 0:
        raise ApprovalError("Add at least one scene before submitting")
    if totals.invalid_scenes:
        n = totals.invalid_scenes
        raise ApprovalError(
            f"{n} scene{'s' if n != 1 else ''} need{'s' if n == 1 else ''} fixing before you submit"
        )
    approved = approved_budget(project)
    is_change_order = approved.original is not None
    if is_change_order:
        if totals.total_credits <= approved.final:
            raise ApprovalError(
                f"The plan ({totals.total_credits:,}) fits the approved budget ({approved.final:,}): "
                "no change order is needed"
            )
        if not reason.strip():
            raise ApprovalError("Say why the budget needs to grow", field="reason")
    number = (project.budget_versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = BudgetVersion.objects.create(
        project=project,
        number=number,
        kind=BudgetVersion.Kind.CHANGE_ORDER if is_change_order else BudgetVersion.Kind.ORIGINAL,
        submitted_by=by.user,
        reason=reason.strip(),
        expected_credits=totals.expected_credits,
        planned_credits=totals.planned_credits,
        contingency_percent=project.contingency_percent,
        contingency_credits=totals.contingency_credits,
        total_credits=totals.total_credits,
        approved_before=approved.final,
    )
    BudgetLine.objects.bulk_create(
        BudgetLine(
            version=version,
            scene=s,
            position=s.position,
            title=s.title,
            model_slug=s.video_model.slug,
            model_name=s.video_model.name,
            quality=s.quality,
            seconds=s.seconds,
            variants=s.variants,
            credits_per_take=s.credits_per_take,
            planned_takes=s.planned_takes,
            expected_credits=s.expected_credits,
            planned_credits=s.planned_credits,
        )  # fmt: skip
        for s in project.scenes.filter(deleted_at__isnull=True).select_related("video_model")
    )
    if not is_change_order:
        project.status = Project.Status.SUBMITTED
        project.save(update_fields=["status", "updated_at"])
    kind = AuditEvent.Kind.CHANGE_ORDER if is_change_order else AuditEvent.Kind.SUBMITTED
    _audit(
        project,
        kind,
        actor=by.user,
        version=version,
        credits=version.requested_for("planned"),
        comment=reason,
    )
    notify_leads(
        project=project,
        dedupe_key=f"submitted:{version.id}",
        subject=f"{project.name}: {version.get_kind_display().lower()} v{number} waits for approval",
        body=f"{by.user.display_name} asks for {version.requested_for('planned'):,} credits.",
        url=reverse("planner:approval", args=[project.team.slug, version.id]),
    )
    return version


def _lock_pending(version: BudgetVersion, by: Membership) -> BudgetVersion:
    version = (
        BudgetVersion.objects.select_for_update(of=("self",))
        .select_related("project__team")
        .get(pk=version.pk)
    )
    if version.project.team_id != by.team_id:
        raise ApprovalError("This budget belongs to another team")
    if not version.is_pending:
        raise ApprovalError(
            f"Version {version.number} was already decided: {version.get_status_display().lower()}"
        )
    return version


def _refuse_own(version: BudgetVersion, by: Membership) -> None:
    if version.submitted_by_id == by.user_id:
        raise ApprovalError("You submitted this budget: another lead or the owner has to decide on it")


@transaction.atomic
def budget_approve(
    *, version: BudgetVersion, by: Membership, basis: str, credits: int | None = None, comment: str = ""
) -> BudgetVersion:
    """Approve at the planned figure, the expected figure or a typed amount, and hold those credits."""
    version = _lock_pending(version, by)
    _refuse_own(version, by)
    project = Project.objects.select_for_update().get(pk=version.project_id)
    if basis == BudgetVersion.Basis.CUSTOM:
        if credits is None or not 0 < credits <= MAX_APPROVAL:
            raise ApprovalError(f"Type an amount between 1 and {MAX_APPROVAL:,} credits", field="credits")
        amount = credits
    elif basis in {BudgetVersion.Basis.PLANNED, BudgetVersion.Basis.EXPECTED}:
        amount = version.requested_for(basis)
    else:
        raise ApprovalError("Choose the planned figure, the expected figure or type an amount", field="basis")
    if amount <= 0:
        raise ApprovalError(
            "That figure adds nothing to the approved budget: type an amount", field="credits"
        )
    reference = f"project:{project.id}"
    try:
        if project.budget_hold_id is None:
            project.budget_hold = ledger_hold(
                team=project.team, credits=amount, key=version.hold_key, reference=reference
            )
            hold_event = AuditEvent.Kind.HOLD_PLACED
        else:
            ledger_hold_extend(hold=project.budget_hold, credits=amount, key=version.hold_key)
            hold_event = AuditEvent.Kind.HOLD_EXTENDED
    except InsufficientCredits as short:
        raise ApprovalShortfall(available=short.available, needed=short.needed) from None
    version.status = BudgetVersion.Status.APPROVED
    version.basis, version.approved_credits = basis, amount
    version.decided_by, version.decided_at, version.decision_comment = (
        by.user,
        timezone.now(),
        comment.strip(),
    )
    version.save()
    if project.status in {Project.Status.DRAFT, Project.Status.SUBMITTED}:
        project.status = Project.Status.APPROVED
    if version.kind == BudgetVersion.Kind.ORIGINAL:
        project.original_budget = amount
    else:
        project.change_order_credits += amount
    project.approved_version = version.number
    project.save()
    _audit(project, AuditEvent.Kind.APPROVED, actor=by.user, version=version, credits=amount, comment=comment)
    _audit(project, hold_event, actor=by.user, version=version, credits=amount)
    notify(
        team=project.team,
        recipients=[version.submitted_by, project.responsible],
        dedupe_key=f"decided:{version.id}",
        subject=f"{project.name}: v{version.number} approved for {amount:,} credits",
        body=comment,
        url=_project_url(project),
        project=project,
    )
    balance_alert_check(team=project.team)
    return version


def _decide_against(version, by, comment, status, kind, verb) -> BudgetVersion:
    version = _lock_pending(version, by)
    _refuse_own(version, by)
    if not comment.strip():
        raise ApprovalError(f"Say why you {verb} it: the producer will read this", field="comment")
    project = version.project
    version.status = status
    version.decided_by, version.decided_at, version.decision_comment = (
        by.user,
        timezone.now(),
        comment.strip(),
    )
    version.save()
    if version.kind == BudgetVersion.Kind.ORIGINAL:
        project.status = Project.Status.DRAFT
        project.save(update_fields=["status", "updated_at"])
    _audit(project, kind, actor=by.user, version=version, comment=comment)
    notify(
        team=project.team,
        recipients=[version.submitted_by, project.responsible],
        dedupe_key=f"decided:{version.id}",
        subject=f"{project.name}: v{version.number} {version.get_status_display().lower()}",
        body=comment,
        url=_project_url(project),
        project=project,
    )
    return version


@transaction.atomic
def budget_reject(*, version: BudgetVersion, by: Membership, comment: str) -> BudgetVersion:
    return _decide_against(
        version, by, comment, BudgetVersion.Status.REJECTED, AuditEvent.Kind.REJECTED, "reject"
    )


@transaction.atomic
def budget_send_back(*, version: BudgetVersion, by: Membership, comment: str) -> BudgetVersion:
    return _decide_against(
        version, by, comment, BudgetVersion.Status.RETURNED, AuditEvent.Kind.RETURNED, "send back"
    )


@transaction.atomic
def budget_withdraw(*, version: BudgetVersion, by: Membership) -> BudgetVersion:
    version = _lock_pending(version, by)
    version.status = BudgetVersion.Status.WITHDRAWN
    version.decided_by, version.decided_at = by.user, timezone.now()
    version.save()
    if version.kind == BudgetVersion.Kind.ORIGINAL:
        version.project.status = Project.Status.DRAFT
        version.project.save(update_fields=["status", "updated_at"])
    _audit(version.project, AuditEvent.Kind.WITHDRAWN, actor=by.user, version=version)
    return version


def _finish(project: Project, by: Membership, *, status: str, comment: str, resolve) -> Project:
    project = Project.objects.select_for_update(of=("self",)).select_related("budget_hold").get(pk=project.pk)
    if not project.is_active:
        raise ApprovalError(f"This project is already {project.get_status_display().lower()}")
    for version in project.budget_versions.filter(status=BudgetVersion.Status.PENDING):
        version.status = BudgetVersion.Status.WITHDRAWN
        version.decided_by, version.decided_at = by.user, timezone.now()
        version.save()
    if project.budget_hold_id is not None:
        # Takes still waiting for a slot are cancelled first, so their credits are released with the rest.
        queue_cancel_waiting(project=project)
        project.budget_hold.refresh_from_db()
        released = project.budget_hold.open_credits
        resolve(hold=project.budget_hold, key=f"{status}:project:{project.id}")
        _audit(project, AuditEvent.Kind.HOLD_RELEASED, actor=by.user, credits=released, comment=comment)
    project.status = status
    project.save(update_fields=["status", "updated_at"])
    return project


@transaction.atomic
def project_cancel(*, project: Project, by: Membership, comment: str) -> Project:
    """Stop a project: its reservation returns to the team (credits already spent stay spent)."""
    if not comment.strip():
        raise ApprovalError("Say why the project is cancelled", field="comment")
    project = _finish(project, by, status=Project.Status.ARCHIVED, comment=comment, resolve=ledger_void_hold)
    _audit(project, AuditEvent.Kind.CANCELLED, actor=by.user, comment=comment)
    return project


@transaction.atomic
def project_deliver(*, project: Project, by: Membership) -> Project:
    """Hand the project over: the reservation is closed and what was not spent returns to the team."""
    return _finish(
        project, by, status=Project.Status.DELIVERED, comment="Delivered", resolve=ledger_close_hold
    )
