from django import forms

from keter.accounts.models import User
from ledger.forms import ReportPeriodForm
from planner.models import Project, Scene
from planner.models.projects import MAX_SCENE_SECONDS, MAX_VARIANTS

AUDIO_CHOICES = [("", "Model default"), ("on", "On"), ("off", "Off")]
AUDIO_VALUES = {"": None, "on": True, "off": False}
OPTION_FIELDS = ["fast_motion", "hdr", "upscale_4k", "sound_effects"]


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "goal", "usage", "responsible", "due_date", "contingency_percent", "links", "notes"]
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}),
            "goal": forms.Textarea(attrs={"rows": 3}),
            "links": forms.Textarea(attrs={"rows": 2}),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"contingency_percent": "Contingency %", "responsible": "Responsible member"}

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["responsible"].queryset = User.objects.filter(memberships__team=team).order_by("email")

    def clean_links(self):
        links = self.cleaned_data["links"]
        validate = forms.URLField(assume_scheme="https").clean
        for number, line in enumerate(links.splitlines(), start=1):
            if line.strip():
                try:
                    validate(line.strip())
                except forms.ValidationError:
                    raise forms.ValidationError(f"Line {number} is not a link: {line.strip()[:60]}") from None
        return links


class SceneForm(forms.Form):
    """A scene's editable fields. Every field is optional: only the fields present in the data change.

    The row form posts a hidden "0" before each checkbox, so an unticked box still arrives (as "0").
    """

    title = forms.CharField(max_length=120, required=False)
    prompt = forms.CharField(max_length=4000, required=False)
    seconds = forms.IntegerField(
        min_value=1,
        max_value=MAX_SCENE_SECONDS,
        error_messages={
            "invalid": "Enter the length in whole seconds",
            "min_value": "A clip lasts at least 1 second",
            "max_value": f"No model makes clips over {MAX_SCENE_SECONDS} s",
            "required": "Enter a length in seconds",
        },
    )
    model = forms.CharField(max_length=60, error_messages={"required": "Choose a model"})
    quality = forms.CharField(max_length=10, required=False)
    audio = forms.ChoiceField(choices=AUDIO_CHOICES, required=False)
    fast_motion = forms.BooleanField(required=False)
    hdr = forms.BooleanField(required=False)
    upscale_4k = forms.BooleanField(required=False)
    sound_effects = forms.BooleanField(required=False)
    image_refs = forms.IntegerField(min_value=0, max_value=20, error_messages={"required": "Enter 0 or more"})
    video_refs = forms.IntegerField(min_value=0, max_value=20, error_messages={"required": "Enter 0 or more"})
    reference_links = forms.CharField(max_length=4000, required=False)
    variants = forms.IntegerField(
        min_value=1,
        max_value=MAX_VARIANTS,
        error_messages={
            "invalid": "Enter the number of keepers wanted",
            "min_value": "A scene needs at least 1 variant",
            "max_value": f"A scene can plan up to {MAX_VARIANTS} variants",
            "required": "Enter the number of keepers wanted",
        },
    )
    planned_takes_override = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        required=False,
        error_messages={"min_value": "Plan at least 1 take, or leave it blank for the estimate"},
    )
    notes = forms.CharField(max_length=4000, required=False)
    status = forms.ChoiceField(choices=Scene.Status.choices)

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        # Only what was sent is validated and changed.
        for name in list(self.fields):
            if name not in data:
                del self.fields[name]
        for name in OPTION_FIELDS:
            if name in self.fields:
                self.fields[name] = forms.TypedChoiceField(
                    choices=[("0", "off"), ("1", "on"), ("on", "on"), ("false", "off"), ("true", "on")],
                    coerce=lambda v: v in {"1", "on", "true"},
                    required=False,
                    empty_value=False,  # an empty value is "off", never "" (which the model cannot save)
                )


class WhatIfForm(forms.Form):
    all = forms.BooleanField(required=False)
    model = forms.CharField(max_length=60, required=False)
    quality = forms.CharField(max_length=10, required=False)
    seconds = forms.IntegerField(
        min_value=1, max_value=MAX_SCENE_SECONDS, required=False,
        error_messages={"invalid": "Enter the length in whole seconds"},
    )  # fmt: skip


class SceneImportForm(forms.Form):
    file = forms.FileField(label="CSV file")


class SubmitForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class CommentForm(forms.Form):
    comment = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why: the producer will read this"},
    )


class ApprovalDecisionForm(forms.Form):
    basis = forms.ChoiceField(
        choices=[("planned", "Planned (P90)"), ("expected", "Expected"), ("custom", "Another amount")],
        widget=forms.RadioSelect,
    )
    credits = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1_000_000_000,
        label="Amount (credits)",
        error_messages={"invalid": "Type the amount in whole credits", "min_value": "Type at least 1 credit"},
    )
    comment = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("basis") == "custom" and data.get("credits") is None and "credits" not in self.errors:
            self.add_error("credits", "Type the amount to approve")
        return data


class ReportFiltersForm(ReportPeriodForm):
    """The reports page's filters; all kept in the URL so a report can be shared as a link."""

    project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, empty_label="All projects"
    )
    model = forms.ChoiceField(required=False, label="Model")
    member = forms.ModelChoiceField(queryset=User.objects.none(), required=False, empty_label="Everyone")
    quality = forms.ChoiceField(required=False)

    def __init__(self, *args, team, models, qualities, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = team.projects.order_by("name")
        self.fields["member"].queryset = User.objects.filter(memberships__team=team).order_by("email")
        self.fields["model"].choices = [("", "All models"), *[(m.slug, m.name) for m in models]]
        self.fields["quality"].choices = [("", "All qualities"), *[(q, q) for q in qualities]]

    def filters(self):
        from planner.reports import ReportFilters

        date_from, date_to = self.period()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return ReportFilters(
            date_from=date_from,
            date_to=date_to,
            project_id=data["project"].id if data.get("project") else None,
            model_slug=data.get("model", ""),
            member_id=data["member"].id if data.get("member") else None,
            quality=data.get("quality", ""),
        )
