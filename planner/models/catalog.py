import datetime as dt

from django.core.exceptions import ValidationError
from django.db import models

from planner.costing import REFERENCE_KINDS, CatalogError, ModelSpec, PriceRule


class VideoModel(models.Model):
    """A video model a team can generate with: what it makes, how it settles, how fast it "renders"."""

    class Reference(models.TextChoices):
        NONE = "none", "No reference needed"
        IMAGE = "image", "Needs an image reference"
        VIDEO = "video", "Needs a video reference"

    slug = models.SlugField(unique=True, help_text="Part of the product's interface (estimate command, API)")
    name = models.CharField(max_length=80)
    vendor = models.CharField(max_length=60)
    qualities = models.JSONField(
        help_text='Offered qualities, low to high; the first is the default: ["720p"]'
    )
    min_seconds = models.PositiveSmallIntegerField(default=1)
    max_seconds = models.PositiveSmallIntegerField(null=True, blank=True, help_text="For a range of lengths")
    lengths = models.JSONField(default=list, blank=True, help_text="For a fixed set of lengths: [5, 10]")
    quality_max_seconds = models.JSONField(default=dict, blank=True, help_text='Shorter caps: {"1080p": 6}')
    required_reference = models.CharField(max_length=10, choices=Reference.choices, default=Reference.NONE)
    supports_audio = models.BooleanField(default=False)
    audio_by_default = models.BooleanField(default=False)
    options = models.JSONField(default=list, blank=True, help_text='e.g. ["fast_motion", "sound_effects"]')
    success_rate = models.DecimalField(
        max_digits=4, decimal_places=3, help_text="Share of takes worth keeping"
    )
    success_rate_is_estimate = models.BooleanField(default=True, help_text="Vendors publish no success rates")
    refund_on_failure = models.BooleanField(default=True)
    refund_on_moderation = models.BooleanField(default=False)
    render_seconds_per_output_second = models.PositiveSmallIntegerField(default=5)
    is_active = models.BooleanField(
        default=True, help_text="Retired models stay for old estimates and reports"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def spec(self) -> ModelSpec:
        return ModelSpec(
            slug=self.slug,
            name=self.name,
            qualities=self.qualities,
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
            lengths=self.lengths,
            quality_max_seconds=self.quality_max_seconds,
            required_reference=self.required_reference,
            supports_audio=self.supports_audio,
            audio_by_default=self.audio_by_default,
            options=self.options,
            success_rate=self.success_rate,
        )

    def clean(self):
        try:
            self.spec()
        except (CatalogError, TypeError) as error:
            raise ValidationError(str(error)) from error

    @property
    def lengths_label(self) -> str:
        if self.lengths:
            *rest, last = self.lengths
            return f"{', '.join(map(str, rest))} or {last} s" if rest else f"{last} s"
        return f"{self.min_seconds}–{self.max_seconds} s"

    @property
    def reference_label(self) -> str:
        return {"none": "—", "image": "image", "video": "video"}[self.required_reference]

    @property
    def policy_label(self) -> str:
        failure = "refund" if self.refund_on_failure else "charged"
        moderation = "refund" if self.refund_on_moderation else "charged"
        return f"failed: {failure} · moderated: {moderation}"


assert set(VideoModel.Reference.values) == set(REFERENCE_KINDS)


class PriceVersion(models.Model):
    """A model's pricing rule from a date on, so an old estimate or report can be reproduced."""

    video_model = models.ForeignKey(VideoModel, on_delete=models.PROTECT, related_name="prices")
    effective_from = models.DateField()
    rule = models.JSONField(help_text='e.g. {"per_second": {"720p": 5}} or {"tiers": {"720p": {"5": 160}}}')
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["video_model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["video_model", "effective_from"], name="one_price_per_model_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.video_model} from {self.effective_from:%Y-%m-%d}"

    def price_rule(self) -> PriceRule:
        return PriceRule.from_dict(self.rule)

    def clean(self):
        try:
            self.price_rule()
        except (CatalogError, TypeError, ValueError) as error:
            raise ValidationError({"rule": str(error)}) from error

    def applies_on(self, day: dt.date) -> bool:
        return self.effective_from <= day
