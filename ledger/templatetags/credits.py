from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def signed_credits(value: int) -> str:
    """+5,000 or −900 (a true minus sign), so a column of changes reads at a glance."""
    if not value:
        return "0"
    return f"+{intcomma(value)}" if value > 0 else f"\u2212{intcomma(-value)}"
