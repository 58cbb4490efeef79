from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from keter.accounts.models import Team
from planner.costing import OPTION_LABELS
from planner.models.catalog import VideoModel
from planner.models.projects import Project, Scene


class Job(models.Model):
    """One launched take: a row first (the database is the source of truth), then a Celery task.

    Its credits left the project's approved budget at launch and sit in the job's own ledger hold
    (`hold`) until the job settles, exactly once: captured, or voided and returned to the budget.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        MODERATED = "moderated", "Blocked by moderation"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)
    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.MODERATED, State.CANCELLED)

    class Verdict(models.TextChoices):
        PENDING = "pending", "Not judged yet"
        KEEPER = "keeper", "Keeper"
        REJECTED = "rejected", "Rejected"

    # No index of their own: the indexes below lead with the team, and the take numbers' with the scene.
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="jobs", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="jobs")
    scene = models.ForeignKey(Scene, on_delete=models.PROTECT, related_name="jobs", db_index=False)
    video_model = models.ForeignKey(VideoModel, on_delete=models.PROTECT, related_name="jobs")
    take_number = models.PositiveIntegerField(help_text="Counts the scene's takes from 1, in launch order")
    # What was asked, frozen at launch: seconds, quality, audio, options, references and prompt.
    params = models.JSONField()
    credits = models.PositiveIntegerField(help_text="Reserved at launch; captured or returned at settlement")
    # The outcome is drawn from random.Random(seed) at this success rate, so a run can be replayed.
    seed = models.BigIntegerField()
    success_rate = models.DecimalField(max_digits=4, decimal_places=3)
    render_seconds = models.FloatField(help_text="Simulated render time")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    hold = models.OneToOneField(
        "ledger.Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="job"
    )
    queued_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When it took one of the slots")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker began rendering")
    finished_at = models.DateTimeField(null=True, blank=True)
    # A running job whose lease runs out is presumed lost (its worker died) and is sent again.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    launched_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices, default=Verdict.PENDING)
    judged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["queued_at", "id"]
        indexes = [
            # The teams' lines and running jobs (every dispatch reads them, and the sweeper): only the
            # active jobs, so their size is the queue's, not the team's history, and a job's last move adds
            # nothing to them. No index holds started_at, attempts or lease_expires_at, so a claim, which
            # writes only those, is a HOT update (no index touched).
            models.Index(
                fields=["team", "state", "queued_at", "id"],
                condition=Q(state__in=["queued", "running"]),
                name="planner_job_active_line",
            ),
            models.Index(fields=["team", "verdict", "video_model"], name="planner_job_verdicts"),
            # The reports: a team's takes finished in a period.
            models.Index(fields=["team", "finished_at"], name="planner_job_team_finished"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["scene", "take_number"], name="one_take_number_per_scene"),
            models.CheckConstraint(condition=Q(credits__gt=0), name="planner_job_credits_positive"),
            # Only a take that came out can be judged.
            models.CheckConstraint(
                condition=Q(verdict="pending") | Q(state="succeeded"), name="planner_job_verdict_on_takes"
            ),
        ]

    def __str__(self) -> str:
        return f"Job #{self.pk} · take {self.take_number} of {self.scene}"

    @property
    def reference(self) -> str:
        return f"job:{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    def charges(self, state: str) -> bool:
        """Whether a take ending in `state` costs its credits, by its model's policy."""
        if state == self.State.SUCCEEDED:
            return True
        if state == self.State.MODERATED:
            return not self.video_model.refund_on_moderation
        if state == self.State.FAILED:
            return not self.video_model.refund_on_failure
        return False

    @property
    def is_charged(self) -> bool:
        """Whether the take, as it ended, cost its credits (False while it is queued or running)."""
        return self.charges(self.state)

    @property
    def is_take(self) -> bool:
        return self.state == self.State.SUCCEEDED

    @property
    def is_keeper(self) -> bool:
        return self.verdict == self.Verdict.KEEPER

    @property
    def thumbnail_hue(self) -> int:
        """The placeholder thumbnail's colour, the same for the same take every time."""
        return self.seed % 360

    @property
    def seconds(self) -> int:
        return self.params.get("seconds", 0)

    @property
    def quality(self) -> str:
        return self.params.get("quality") or ""

    @property
    def options_label(self) -> str:
        on = [label for name, label in OPTION_LABELS.items() if self.params.get(name)]
        if self.params.get("audio"):
            on.insert(0, "audio")
        return ", ".join(on)
