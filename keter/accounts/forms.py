from django import forms

from keter.accounts.roles import Role


class MemberAddForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")
    name = forms.CharField(max_length=120, required=False, label="Name (optional)")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.PRODUCER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TeamAlertsForm(forms.Form):
    low_balance_threshold = forms.IntegerField(
        min_value=0,
        max_value=1_000_000_000,
        label="Alert when available credits fall below",
        help_text="The owners and leads get a notification and an email. 0 turns the alert off.",
        error_messages={"invalid": "Enter a whole number of credits", "min_value": "Enter 0 or more"},
    )
