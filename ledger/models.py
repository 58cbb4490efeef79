"""The credit ledger's tables: double-entry accounts, append-only transactions, lots, two-phase holds.

Rows here are written only by `ledger.services`, which keeps them consistent with one another;
`ledger.checks.ledger_check` proves it. The ledger knows teams and users, never what the credits buy:
a `reference` such as `job:123` is an opaque string to it.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from keter.accounts.models import Team


class Account(models.Model):
    """A place credits sit. Each team has `available` and `held`; five system accounts balance them.

    Team accounts carry a cached `balance`, locked and updated with every posting. System accounts keep
    no running balance (it stays 0): every team's postings touch them, so a locked balance there would
    serialise the whole product on one row. Their balance is the sum of their entries when needed.
    """

    class Kind(models.TextChoices):
        AVAILABLE = "available", "Available"
        HELD = "held", "Held"
        ISSUANCE_GRANTS = "issuance_grants", "Issuance: grants"
        ISSUANCE_PURCHASES = "issuance_purchases", "Issuance: purchases"
        USAGE = "usage", "Usage"
        BREAKAGE = "breakage", "Breakage"
        ADJUSTMENTS = "adjustments", "Adjustments"

    TEAM_KINDS = (Kind.AVAILABLE, Kind.HELD)

    # A team's accounts are found through the unique (team, kind) constraint's index.
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_accounts", db_index=False
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    balance = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "kind"],
                condition=Q(team__isnull=False),
                name="ledger_one_account_per_team_kind",
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(team__isnull=True), name="ledger_one_system_account_per_kind"
            ),
            models.CheckConstraint(condition=Q(balance__gte=0), name="ledger_account_balance_not_negative"),
        ]

    def __str__(self) -> str:
        owner = self.team.name if self.team_id else "system"
        return f"{owner} · {self.get_kind_display()}"


class Transaction(models.Model):
    """One posting: entries that sum to zero. Never updated or deleted; a correction is a new one."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        TOP_UP = "top_up", "Top-up"
        HOLD = "hold", "Hold"
        HOLD_EXTEND = "hold_extend", "Hold extended"
        CAPTURE = "capture", "Capture"
        RELEASE = "release", "Release"
        HOLD_CLOSE = "hold_close", "Hold closed"
        HOLD_VOID = "hold_void", "Hold voided"
        HOLD_EXPIRE = "hold_expire", "Hold timed out"
        REFUND = "refund", "Refund"
        LOT_EXPIRE = "lot_expire", "Credits expired"
        ADJUST = "adjust", "Adjustment"

    # Every index costs every posting: a foreign key that is only followed from this side, or that a
    # composite index already covers, gets no index of its own.
    # No database constraint of its own (checked on every posting, at commit): the entries' accounts are
    # the team's, and an account with entries can never go (its constraint stays, as do the PROTECTs).
    team = models.ForeignKey(
        Team,
        on_delete=models.PROTECT,
        related_name="ledger_transactions",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text="The idempotency key of the operation that posted it")
    reference = models.CharField(max_length=200, blank=True, help_text="Opaque to the ledger, e.g. job:123")
    memo = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    hold = models.ForeignKey(
        "Hold", on_delete=models.PROTECT, null=True, blank=True, related_name="transactions"
    )
    lot = models.ForeignKey(
        "Lot", on_delete=models.PROTECT, null=True, blank=True, related_name="transactions", db_index=False
    )
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["team", "-id"], name="ledger_txn_team_recent"),
            # Date ranges of one team: the register's filters, balance over time, the trailing burn rate.
            models.Index(fields=["team", "created_at"], name="ledger_txn_team_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.reference}".strip()

    # What the transaction did to the team, read from its (prefetched) entries.
    def _team_leg(self, kind: str) -> "Entry | None":
        return next((e for e in self.entries.all() if e.account.kind == kind), None)

    @property
    def available_change(self) -> int:
        leg = self._team_leg(Account.Kind.AVAILABLE)
        return leg.credits if leg else 0

    @property
    def held_change(self) -> int:
        leg = self._team_leg(Account.Kind.HELD)
        return leg.credits if leg else 0

    @property
    def available_after(self) -> int | None:
        leg = self._team_leg(Account.Kind.AVAILABLE)
        return leg.balance_after if leg else None

    @property
    def counterparts(self) -> list[str]:
        return [e.account.get_kind_display() for e in self.entries.all() if e.account.team_id is None]


class Entry(models.Model):
    """One leg of a transaction: signed credits on one account, and that account's balance after it."""

    # No database foreign key: on PostgreSQL the balance trigger (migrations 0002, 0007) already looks the
    # transaction up for every entry at commit, and transactions are append-only, never deleted.
    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, related_name="entries", db_constraint=False
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    credits = models.BigIntegerField()
    balance_after = models.BigIntegerField(
        null=True, blank=True, help_text="Team accounts only: system accounts keep no running balance"
    )

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "entries"
        indexes = [models.Index(fields=["account", "id"], name="ledger_entry_account_chain")]
        constraints = [models.CheckConstraint(condition=~Q(credits=0), name="ledger_entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.credits:+d} on {self.account_id}"


class Lot(models.Model):
    """Credits that arrived together (a grant or a top-up) and share a category, priority and dates.

    `remaining` is what has not been consumed or broken yet; `reserved` is the part of it holds are
    keeping. While the lot is active, `remaining - reserved` is in the team's available balance. When it
    expires, the unreserved remainder goes to breakage and the reserved part stays with its holds: a
    capture may still spend it, but what a hold gives back goes to breakage, never back to available.
    """

    class Category(models.TextChoices):
        PROMOTIONAL = "promotional", "Promotional"
        PAID = "paid", "Paid"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="credit_lots", db_index=False)
    category = models.CharField(max_length=12, choices=Category.choices)
    priority = models.SmallIntegerField(default=0, help_text="Lower numbers are spent first")
    credits = models.BigIntegerField()
    remaining = models.BigIntegerField()
    reserved = models.BigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    effective_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Blank: never expires")
    key = models.CharField(max_length=200)
    reference = models.CharField(max_length=200, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["team", "status"], name="ledger_lot_team_status"),
            models.Index(fields=["status", "expires_at"], name="ledger_lot_due"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="ledger_lot_credits_positive"),
            models.CheckConstraint(
                condition=Q(reserved__gte=0, remaining__gte=F("reserved"), credits__gte=F("remaining")),
                name="ledger_lot_amounts_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Lot #{self.pk} · {self.get_category_display()} {self.credits:,}"

    @property
    def free(self) -> int:
        """Credits of this lot that nobody holds (part of available while the lot is active)."""
        return self.remaining - self.reserved

    def burn_key(self) -> tuple:
        """Spend order: priority, soonest expiry (never-expiring last), promotional before paid, oldest."""
        return (
            self.priority,
            self.expires_at is None,
            self.expires_at.timestamp() if self.expires_at else 0.0,
            self.category != self.Category.PROMOTIONAL,
            self.created_at,
            self.pk or 0,
        )


class Hold(models.Model):
    """Credits set aside for a purpose (two-phase): pending until posted, voided or timed out, once."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        POSTED = "posted", "Posted"
        VOIDED = "voided", "Voided"
        EXPIRED = "expired", "Timed out"

    # No database constraint (as Transaction.team): its hold transaction's accounts hold the team.
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="credit_holds", db_constraint=False)
    credits = models.BigIntegerField(help_text="Held so far, extensions included")
    captured = models.BigIntegerField(default=0)
    released = models.BigIntegerField(default=0)
    refunded = models.BigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reference = models.CharField(max_length=200, blank=True)
    key = models.CharField(max_length=200)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # Only the holds a time-out can reach: most (a take's, a budget's) never expire and stay out of it.
        indexes = [
            models.Index(
                fields=["expires_at"],
                name="ledger_hold_due",
                condition=Q(status="pending", expires_at__isnull=False),
            )
        ]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="ledger_hold_credits_positive"),
            models.CheckConstraint(
                condition=Q(captured__gte=0, released__gte=0, refunded__gte=0)
                & Q(credits__gte=F("captured") + F("released"))
                & Q(captured__gte=F("refunded")),
                name="ledger_hold_amounts_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Hold #{self.pk} · {self.credits:,} · {self.get_status_display()}"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def open_credits(self) -> int:
        """What the hold still keeps aside: nothing once it is resolved."""
        return self.credits - self.captured - self.released if self.is_pending else 0

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded


class HoldLot(models.Model):
    """Which lots a hold's credits came from, so captures, releases and refunds go back to the right lot."""

    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, related_name="allocations", db_index=False)
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="allocations")
    reserved = models.BigIntegerField(default=0, help_text="Still kept aside from this lot")
    captured = models.BigIntegerField(default=0)
    released = models.BigIntegerField(default=0)
    refunded = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["hold", "lot"], name="ledger_one_allocation_per_hold_lot"),
            models.CheckConstraint(
                condition=Q(reserved__gte=0, captured__gte=F("refunded"), released__gte=0, refunded__gte=0),
                name="ledger_allocation_amounts_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Hold #{self.hold_id} ← lot #{self.lot_id}"


class Operation(models.Model):
    """The one outcome of an idempotency key: what was asked, and what happened (done or refused).

    A retry with the same key and the same request gets this outcome again; with a different request it
    is an `IdempotencyConflict`. Refusals are kept too, so a refused operation stays refused for its key.
    """

    class Outcome(models.TextChoices):
        DONE = "done", "Done"
        REFUSED = "refused", "Refused"

    key = models.CharField(max_length=200)  # unique: see Meta (a constraint, so no LIKE index on PostgreSQL)
    kind = models.CharField(max_length=20)
    # The outcome points at rows its own operation wrote in the same database transaction, rows that can
    # never go afterwards (transactions are append-only; holds, lots and teams are held by constraints
    # kept elsewhere): no database constraints here, three fewer checks at every operation's commit.
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, related_name="ledger_operations", db_index=False, db_constraint=False
    )
    request = models.JSONField(default=dict)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    transaction = models.OneToOneField(
        Transaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="operation",
        db_constraint=False,
    )
    hold = models.ForeignKey(
        Hold,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    lot = models.ForeignKey(
        Lot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["key"], name="ledger_one_outcome_per_key")]

    def __str__(self) -> str:
        return f"{self.key} → {self.get_outcome_display()}"
