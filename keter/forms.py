from django import forms

from keter.errors import DomainError


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Attach a service's refusal to the form field it names, or to the form as a whole."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)
