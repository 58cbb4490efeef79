from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from keter.accounts.models import Team
from planner import costing
from planner.models.projects import Project, Scene


class BudgetVersion(models.Model):
    """A numbered submission of a project's plan: what was asked, scene by scene, and what was decided.

    Version 1 approved is the original budget; later versions are change orders that ask for a delta on
    top of the approved budget. Approving one places (or extends) the project's ledger hold.
    """

    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original budget"
        CHANGE_ORDER = "change_order", "Change order"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        RETURNED = "returned", "Sent back for changes"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Basis(models.TextChoices):
        PLANNED = "planned", "Planned (P90)"
        EXPECTED = "expected", "Expected"
        CUSTOM = "custom", "Typed amount"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="budget_versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True, max_length=2000, help_text="Why a change order is needed")
    # The estimate as submitted (the whole project, not just the delta).
    expected_credits = models.PositiveBigIntegerField()
    planned_credits = models.PositiveBigIntegerField()
    contingency_percent = models.DecimalField(max_digits=5, decimal_places=2)
    contingency_credits = models.PositiveBigIntegerField()
    total_credits = models.PositiveBigIntegerField(help_text="Planned + contingency")
    approved_before = models.PositiveBigIntegerField(default=0, help_text="Approved budget when submitted")
    # The decision.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True, max_length=2000)
    basis = models.CharField(max_length=10, choices=Basis.choices, blank=True)
    approved_credits = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="What this version adds"
    )

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="one_budget_version_number"),
            # One open submission per project at a time.
            models.UniqueConstraint(
                fields=["project"], condition=Q(status="pending"), name="one_pending_budget_version"
            ),
        ]
        indexes = [models.Index(fields=["status", "submitted_at"])]

    def __str__(self) -> str:
        return f"{self.project} v{self.number} ({self.get_status_display()})"

    @property
    def hold_key(self) -> str:
        return f"hold:approval:{self.id}"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def requested_credits(self) -> int:
        """What it asks for at the planned (P90) figure with contingency."""
        return self.requested_for(self.Basis.PLANNED)

    def requested_for(self, basis: str) -> int:
        """Credits this version asks to add to the approved budget, at the planned or expected figure."""
        if basis == self.Basis.EXPECTED:
            # The same contingency rule as the planned figure, on the expected credits.
            total = costing.totals_from_sums(
                expected_credits=self.expected_credits,
                planned_credits=self.expected_credits,
                contingency_percent=self.contingency_percent,
            ).total_credits
        else:
            total = self.total_credits
        return max(total - self.approved_before, 0)


class BudgetLine(models.Model):
    """One scene as it stood in a budget version, so later versions can be compared scene by scene."""

    # PROTECT: a version and its lines are approval history, removed by no deletion elsewhere.
    version = models.ForeignKey(BudgetVersion, on_delete=models.PROTECT, related_name="lines")
    scene = models.ForeignKey(Scene, null=True, on_delete=models.SET_NULL, related_name="+")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=120, blank=True)
    model_slug = models.CharField(max_length=60)
    model_name = models.CharField(max_length=80)
    quality = models.CharField(max_length=10, blank=True)
    seconds = models.PositiveIntegerField()
    variants = models.PositiveSmallIntegerField()
    credits_per_take = models.PositiveIntegerField()
    planned_takes = models.PositiveIntegerField()
    expected_credits = models.PositiveBigIntegerField()
    planned_credits = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["version", "position"]

    def __str__(self) -> str:
        return f"{self.title or self.model_name} ({self.planned_credits} credits)"


class AuditEvent(models.Model):
    """Who did what to a project's budget, when, for how much: the project's timeline."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", "Submitted for approval"
        CHANGE_ORDER = "change_order", "Change order submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        RETURNED = "returned", "Sent back for changes"
        WITHDRAWN = "withdrawn", "Withdrawn"
        HOLD_PLACED = "hold_placed", "Credits reserved"
        HOLD_EXTENDED = "hold_extended", "Reservation extended"
        HOLD_RELEASED = "hold_released", "Reservation released"
        CANCELLED = "cancelled", "Project cancelled"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="audit_events")
    version = models.ForeignKey(
        BudgetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    credits = models.BigIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.project}: {self.get_kind_display()}"


class Notification(models.Model):
    """An in-app alert for one person (also sent by email). `dedupe_key` makes each alert fire once."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications"
    )
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    dedupe_key = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "dedupe_key"], name="one_notification_per_alert")
        ]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return self.subject
