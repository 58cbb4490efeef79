"""Roles and the permission matrix: the one place that says which role may do what.

Every view asks `can(role, action)` (through the `team_view` decorator) and the navigation is built from the
same table, so a role never sees a link it cannot follow. README shows this table (`manage.py permissions`).
"""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    LEAD = "lead", "Team lead"
    PRODUCER = "producer", "Producer"
    FINANCE = "finance", "Finance"
    VIEWER = "viewer", "Viewer"


OWNER, LEAD, PRODUCER, FINANCE, VIEWER = Role.OWNER, Role.LEAD, Role.PRODUCER, Role.FINANCE, Role.VIEWER
EVERYONE = frozenset(Role)

# action -> (roles allowed, what it means, for the README table)
MATRIX: dict[str, tuple[frozenset[str], str]] = {
    "dashboard.view": (EVERYONE, "See the team dashboard"),
    "team.view": (EVERYONE, "See the team page and its members"),
    "team.manage": (frozenset({OWNER}), "Add members, change roles, remove members, set the plan"),
    "catalog.view": (EVERYONE, "See the video model catalog and estimate costs"),
    "project.view": (EVERYONE, "See projects, scenes and their estimates"),
    "project.edit": (
        frozenset({OWNER, PRODUCER}),
        "Create projects, edit scenes, import and export scene lists",
    ),
    "project.submit": (frozenset({OWNER, PRODUCER}), "Submit a project's budget for approval"),
    "approval.view": (EVERYONE, "See the approvals inbox and budget history"),
    "approval.decide": (frozenset({OWNER, LEAD}), "Approve, reject or send back a budget (never one's own)"),
    "queue.view": (EVERYONE, "See the generation queue and takes"),
    "queue.launch": (frozenset({OWNER, PRODUCER}), "Launch and cancel takes, mark keepers"),
    "credits.view": (frozenset({OWNER, FINANCE}), "See the team's balance, lots and transactions"),
    "credits.manage": (frozenset({OWNER, FINANCE}), "Top up, grant and adjust credits"),
    "reports.view": (frozenset({OWNER, FINANCE, LEAD}), "See usage and cost reports"),
    "reports.export": (frozenset({OWNER, FINANCE, LEAD}), "Export reports (CSV, XLSX, journal)"),
}


def can(role: str | None, action: str) -> bool:
    """Whether `role` may perform `action`; an action missing from the matrix is a programming error."""
    allowed, _ = MATRIX[action]
    return role in allowed


def matrix_markdown() -> str:
    roles = list(Role)
    header = "| action | " + " | ".join(r.label for r in roles) + " | what it allows |"
    rule = "|---" * (len(roles) + 2) + "|"
    rows = [
        f"| `{action}` | " + " | ".join("yes" if r in allowed else "—" for r in roles) + f" | {meaning} |"
        for action, (allowed, meaning) in MATRIX.items()
    ]
    return "\n".join([header, rule, *rows])
