import uuid
from datetime import timedelta

from django import forms
from django.utils import timezone

from ledger.models import Transaction
from ledger.services import MAX_CREDITS, MIN_TOP_UP

WHOLE_NUMBER = "Enter a whole number of credits, like 2500"
STALE_FORM = "This form is out of date: reload the page and try again"


class CreditsField(forms.IntegerField):
    """Whole credits; forgives the separators people type ("2,500", "2 500", "2_500")."""

    # A text input, not type=number, so whatever was typed (even "abc") comes back to the person as typed.
    widget = forms.TextInput

    def __init__(self, *, signed: bool = False, **kwargs):
        kwargs.setdefault("label", "Credits")
        super().__init__(min_value=-MAX_CREDITS if signed else 1, max_value=MAX_CREDITS, **kwargs)
        too_many = f"At most {MAX_CREDITS:,} credits at a time"
        self.error_messages.update(
            {
                "invalid": WHOLE_NUMBER,
                "required": "Enter a number of credits",
                "max_value": too_many,
                "min_value": too_many if signed else "Enter credits above zero",
            }
        )
        self.widget.attrs.update({"inputmode": "numeric", "autocomplete": "off"})

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().replace(",", "").replace("_", "").replace(" ", "").replace("\u00a0", "")
            if len(value) > 20:  # far beyond any limit; also spares int() a pathological string
                raise forms.ValidationError(self.error_messages["max_value"], code="max_value")
        return super().to_python(value)


class LedgerActionForm(forms.Form):
    """A finance action; the hidden token makes a double submit return the first outcome."""

    request_token = forms.UUIDField(
        widget=forms.HiddenInput, error_messages={"required": STALE_FORM, "invalid": STALE_FORM}
    )

    id_prefix = "action"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("request_token", uuid.uuid4())
        # Three of these share a page: distinct ids keep each label tied to its own input.
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        if "request_token" in self.errors:
            # A hidden field's error would be invisible next to it: say it at the top of the form.
            self.add_error(None, self.errors.pop("request_token")[0])
        return cleaned


class TopUpForm(LedgerActionForm):
    id_prefix = "top-up"
    credits = CreditsField(help_text=f"A simulated purchase; packs of at least {MIN_TOP_UP:,} credits")
    reference = forms.CharField(
        max_length=200,
        required=False,
        label="Purchase reference (optional)",
        help_text="e.g. an invoice number",
    )


class GrantForm(LedgerActionForm):
    id_prefix = "grant"
    credits = CreditsField()
    expires_on = forms.DateField(
        required=False,
        label="Expires on (optional)",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-12-31"},
        help_text="The credits stop counting at the start of that day; leave empty for no expiry",
    )
    memo = forms.CharField(max_length=200, required=False, label="Note (optional)")

    def clean_expires_on(self):
        expires_on = self.cleaned_data.get("expires_on")
        if expires_on is not None and expires_on <= timezone.localdate():
            raise forms.ValidationError("Choose a date after today")
        return expires_on


class AdjustForm(LedgerActionForm):
    id_prefix = "adjust"
    credits = CreditsField(signed=True, help_text="Positive adds credits, negative removes available credits")
    reason = forms.CharField(
        max_length=200, label="Reason", error_messages={"required": "Say why: an adjustment needs a reason"}
    )


class DateRangeForm(forms.Form):
    """Two optional days, the second not before the first (and, when set, at most MAX_DAYS apart)."""

    MAX_DAYS: int | None = None

    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-12-31"},
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date like 2026-12-31"},
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "Choose an end date on or after the start date")
        elif start and end and self.MAX_DAYS and (end - start).days >= self.MAX_DAYS:
            self.add_error("date_from", "Choose at most three years")
        return cleaned


class TransactionFilterForm(DateRangeForm):
    kind = forms.ChoiceField(
        choices=[("", "All kinds"), *Transaction.Kind.choices], required=False, label="Kind"
    )
    q = forms.CharField(max_length=200, required=False, label="Reference contains")
    field_order = ["kind", "q", "date_from", "date_to"]


class ReportPeriodForm(DateRangeForm):
    """The days a finance report covers; empty fields fall back to the last 90 days."""

    DEFAULT_DAYS = 90
    MAX_DAYS = 3 * 366

    def period(self) -> tuple:
        """(from, to) as entered, with the last 90 days filling what is empty (or all, if invalid)."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("date_to") or timezone.localdate()
        start = data.get("date_from") or end - timedelta(days=self.DEFAULT_DAYS - 1)
        return start, end
