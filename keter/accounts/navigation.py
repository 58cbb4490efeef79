"""The main navigation: each entry is shown only to roles the permission matrix lets through."""

from dataclasses import dataclass

from django.urls import reverse

from keter.accounts.models import Membership


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    action: str


NAV = [
    NavEntry("Dashboard", "planner:dashboard", "dashboard.view"),
    NavEntry("Projects", "planner:projects", "project.view"),
    NavEntry("Approvals", "planner:approvals", "approval.view"),
    NavEntry("Queue", "planner:queue", "queue.view"),
    NavEntry("Credits", "ledger:credits", "credits.view"),
    NavEntry("Reports", "planner:reports", "reports.view"),
    NavEntry("Catalog", "planner:catalog", "catalog.view"),
    NavEntry("Team", "accounts:team", "team.view"),
]


def nav_for(membership: Membership, path: str) -> list[dict]:
    items = []
    for entry in NAV:
        if membership.can(entry.action):
            url = reverse(entry.url_name, args=[membership.team.slug])
            is_current = path == url if entry.url_name == "planner:dashboard" else path.startswith(url)
            items.append({"label": entry.label, "url": url, "is_current": is_current})
    return items
