from django.db import transaction

from keter.accounts.models import Membership
from planner.models import Project


@transaction.atomic
def project_create(*, by: Membership, **fields) -> Project:
    # Whoever starts a project answers for it until someone else is named.
    fields["responsible"] = fields.get("responsible") or by.user
    return Project.objects.create(team=by.team, created_by=by.user, **fields)


@transaction.atomic
def project_update(*, project: Project, **fields) -> Project:
    for name, value in fields.items():
        setattr(project, name, value)
    project.save()
    return project
