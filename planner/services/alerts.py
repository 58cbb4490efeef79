"""In-app notifications, also sent by email; each alert fires once per dedupe key."""

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction

from keter.accounts.models import Team, User
from keter.accounts.roles import Role
from planner.models import Notification, Project


def team_people(team: Team, *roles: str) -> list[User]:
    return list(User.objects.filter(memberships__team=team, memberships__role__in=roles, is_active=True))


def notify(
    *,
    team: Team,
    recipients: Iterable[User],
    dedupe_key: str,
    subject: str,
    body: str = "",
    url: str = "",
    project: Project | None = None,
) -> list[Notification]:
    """Record the alert for each recipient who has not had it yet, and email those on commit."""
    created = []
    for user in {u.id: u for u in recipients if u is not None}.values():
        try:
            with transaction.atomic():
                created.append(
                    Notification.objects.create(
                        team=team,
                        recipient=user,
                        project=project,
                        dedupe_key=dedupe_key,
                        subject=subject,
                        body=body,
                        url=url,
                    )  # fmt: skip
                )
        except IntegrityError:
            continue  # already told: an alert fires once
    if created:
        messages = [(n.subject, f"{n.body}\n\n{n.url}".strip(), None, [n.recipient.email]) for n in created]
        transaction.on_commit(lambda: send_mass_mail(messages, fail_silently=not settings.DEBUG))
    return created


def notify_leads(*, project: Project, dedupe_key: str, subject: str, body: str = "", url: str = "") -> list:
    """The project's responsible member and the team's leads (owners too: they approve as well)."""
    people = [project.responsible, *team_people(project.team, Role.LEAD, Role.OWNER)]
    return notify(
        team=project.team, recipients=people, dedupe_key=dedupe_key, subject=subject, body=body, url=url,
        project=project,
    )  # fmt: skip
