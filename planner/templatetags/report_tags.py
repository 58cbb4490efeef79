"""Filters for the reports page, which formats thousands of figures for a year of a large team."""

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def thousands(value):
    """12,345: what `intcomma` shows in the app's language (en-us), without its locale lookups per call."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return intcomma(value)
