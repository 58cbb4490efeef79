from django.core.management import call_command

from ledger.checks import ledger_check
from planner.demo import DEMO_PROJECT
from planner.models import Job, Project


def test_the_demo_has_an_approved_project_with_rendered_takes_and_keepers(db):
    call_command("seed_demo", quiet_logins=True, verbosity=0)
    call_command("seed_demo", quiet_logins=True, verbosity=0)  # idempotent: one project, same takes
    project = Project.objects.get(name=DEMO_PROJECT)
    assert project.status == Project.Status.IN_PRODUCTION
    jobs = Job.objects.filter(project=project)
    assert jobs.count() == 9 and not jobs.filter(state__in=Job.ACTIVE_STATES).exists()
    assert jobs.filter(verdict="keeper").count() == 2
    first, second, third = project.scenes.order_by("position")
    assert (first.is_ready_for_editing, second.is_ready_for_editing, third.is_ready_for_editing) == (
        True,
        False,
        False,
    )
    assert ledger_check().ok
