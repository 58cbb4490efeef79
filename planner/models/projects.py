from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from keter.accounts.models import Team
from planner.models.catalog import VideoModel

MAX_SCENE_SECONDS = 600  # no model makes longer clips; anything above is a typo
MAX_VARIANTS = 100


class Project(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        IN_PRODUCTION = "in_production", "In production"
        DELIVERED = "delivered", "Delivered"
        ARCHIVED = "archived", "Archived"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(max_length=120)
    goal = models.TextField("What the project is", blank=True, max_length=2000)
    usage = models.CharField("Where the result will be used", max_length=200, blank=True)
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    contingency_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=10, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    links = models.TextField(blank=True, max_length=4000, help_text="One link per line")
    notes = models.TextField(blank=True, max_length=4000)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # The approved budget's reservation in the ledger; change orders extend it.
    budget_hold = models.OneToOneField(
        "ledger.Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="project"
    )
    # The approved budget, kept here by the approval service so a scene edit needs no extra query.
    original_budget = models.PositiveBigIntegerField(null=True, blank=True)
    change_order_credits = models.PositiveBigIntegerField(default=0)
    approved_version = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["team", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def link_list(self) -> list[str]:
        return [line.strip() for line in self.links.splitlines() if line.strip()]

    @property
    def is_active(self) -> bool:
        return self.status not in {self.Status.DELIVERED, self.Status.ARCHIVED}


class Scene(models.Model):
    """One shot of a project: what to generate, with what, and how many keepers are wanted.

    The estimate columns are the cost engine's answer for the scene as saved, so a project's totals are one
    SQL aggregate. When the engine refuses the scene, `estimate_error` says why and the scene counts as
    invalid instead of silently dropping out of the totals. Input that could not even be stored (letters in
    a number field) waits in `invalid_input`, so a reload still shows what the producer typed.
    """

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        IN_PRODUCTION = "in_production", "In production"
        DONE = "done", "Done"
        CUT = "cut", "Cut"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="scenes")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=120, blank=True)
    prompt = models.TextField(blank=True, max_length=4000)
    seconds = models.PositiveIntegerField(default=5)
    video_model = models.ForeignKey(VideoModel, on_delete=models.PROTECT, related_name="scenes")
    quality = models.CharField(max_length=10, blank=True)
    audio = models.BooleanField(null=True, blank=True, help_text="Blank: the model's default")
    fast_motion = models.BooleanField(default=False)
    hdr = models.BooleanField(default=False)
    upscale_4k = models.BooleanField(default=False)
    sound_effects = models.BooleanField(default=False)
    image_refs = models.PositiveSmallIntegerField(default=0)
    video_refs = models.PositiveSmallIntegerField(default=0)
    reference_links = models.TextField(blank=True, max_length=4000)
    variants = models.PositiveSmallIntegerField(default=1)
    planned_takes_override = models.PositiveIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=4000)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    deleted_at = models.DateTimeField(null=True, blank=True)

    # The engine's answer for the scene as saved.
    billed_seconds = models.PositiveIntegerField(default=0)
    credits_per_take = models.PositiveIntegerField(default=0)
    success_rate = models.DecimalField(max_digits=4, decimal_places=3, default=0)
    expected_takes = models.FloatField(default=0)
    planned_takes = models.PositiveIntegerField(default=0)
    expected_credits = models.PositiveBigIntegerField(default=0)
    planned_credits = models.PositiveBigIntegerField(default=0)
    estimate_error = models.CharField(max_length=300, blank=True)
    estimate_error_field = models.CharField(max_length=30, blank=True)
    invalid_input = models.JSONField(default=dict, blank=True)
    priced_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["project", "deleted_at", "position"])]

    def __str__(self) -> str:
        return self.title or f"Scene {self.position}"

    @property
    def is_valid(self) -> bool:
        return not self.estimate_error and not self.invalid_input

    @property
    def credits_per_usable_take(self) -> int | None:
        if not self.success_rate:
            return None
        return round(self.credits_per_take / float(self.success_rate))

    @property
    def keeper_count(self) -> int:
        """Takes marked keeper. Pages that list scenes set `keepers` for all of them in one query."""
        keepers = getattr(self, "keepers", None)
        if keepers is None:
            keepers = self.jobs.filter(state="succeeded", verdict="keeper").count()
        return keepers

    @property
    def is_ready_for_editing(self) -> bool:
        """As many keepers as the variants wanted: the scene can go to the editor."""
        return self.keeper_count >= self.variants > 0

    @property
    def has_low_success_warning(self) -> bool:
        """Planned takes far above the keepers wanted: the model's success rate is eating the budget."""
        return self.is_valid and self.planned_takes >= 3 * self.variants
