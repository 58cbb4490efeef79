from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from keter.accounts.roles import Role, can


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address; what they may do depends on their team memberships."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.name or self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]


class Plan(models.Model):
    """A subscription plan: how many credits arrive, when they expire, and what the team may generate."""

    class Rollover(models.TextChoices):
        NEVER_EXPIRE = "never_expire", "Credits never expire"
        RESET_AT_BILLING = "reset_at_billing", "Plan credits reset at the billing date"
        NO_ROLLOVER = "no_rollover", "Annual pool, no rollover"

    class Cadence(models.TextChoices):
        ONCE = "once", "Once"
        MONTHLY = "monthly", "Every month"
        ANNUAL = "annual", "Every year"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=60)
    price_cents = models.PositiveIntegerField(help_text="Price per month in US cents; 0 for free or custom")
    is_custom_price = models.BooleanField(default=False)
    monthly_credits = models.PositiveIntegerField(help_text="Credits granted per cycle")
    grant_cadence = models.CharField(max_length=10, choices=Cadence.choices, default=Cadence.MONTHLY)
    rollover = models.CharField(max_length=20, choices=Rollover.choices, default=Rollover.RESET_AT_BILLING)
    concurrent_generations = models.PositiveSmallIntegerField(default=1)
    max_clip_seconds = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Blank: no limit")
    max_quality = models.CharField(
        max_length=10, blank=True, help_text="Highest output quality allowed (e.g. 720p); blank: any quality"
    )
    has_explore_queue = models.BooleanField(default=False)
    notes = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "price_cents"]

    def __str__(self) -> str:
        return self.name

    @property
    def price_label(self) -> str:
        if self.is_custom_price:
            return "custom"
        return "free" if self.price_cents == 0 else f"${self.price_cents / 100:,.0f}/month"

    @property
    def quality_label(self) -> str:
        return f"up to {self.max_quality}" if self.max_quality else "every quality"


class Team(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="teams")
    billing_day = models.PositiveSmallIntegerField(
        default=1, help_text="Day of the month plan credits arrive"
    )
    low_balance_threshold = models.PositiveIntegerField(
        default=0, help_text="Alert the owner and leads when available credits fall below this; 0: never"
    )
    created_at = models.DateTimeField(default=timezone.now)
    is_archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "user__email"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} · {self.team} ({self.get_role_display()})"

    def can(self, action: str) -> bool:
        return can(self.role, action)
