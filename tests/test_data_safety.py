"""Deleting a project, a member or a team never deletes credit history (issue #9).

Every model with money (the ledger's, jobs, budget versions and their lines) is reachable by no cascade: each
of its foreign keys is PROTECT, so a deletion elsewhere is refused instead of taking history with it. The
rule is checked on the models and on the state the migrations build, then on the real deletion paths.
"""

import pytest
from django.apps import apps as installed_apps
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse

from keter.accounts.models import Membership, Team, User
from keter.accounts.roles import Role
from keter.accounts.services import membership_remove
from tests.urlwalk import build_team_world

MONEY_APPS = {"ledger"}
MONEY_MODELS = {"planner.job", "planner.budgetversion", "planner.budgetline"}
# Links a deletion may clear (never a row it may remove), each with why the history survives without it.
MAY_BE_CLEARED = {
    "planner.budgetline.scene": "the line keeps the scene's title, model, length and credits as they stood",
}
SAFE = (models.PROTECT, models.RESTRICT)


def _is_money(model) -> bool:
    return model._meta.app_label in MONEY_APPS or model._meta.label_lower in MONEY_MODELS


def _foreign_keys(registry):
    for model in registry.get_models(include_auto_created=True):
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and (field.many_to_one or field.one_to_one):
                yield model, field


def _unsafe_links(registry) -> list[str]:
    problems = []
    for model, field in _foreign_keys(registry):
        target, on_delete = field.related_model, field.remote_field.on_delete
        name = f"{model._meta.label_lower}.{field.name}"
        if _is_money(model) and on_delete not in SAFE and name not in MAY_BE_CLEARED:
            problems.append(
                f"{name} is {on_delete.__name__}: deleting a {target._meta.label} would "
                f"{'remove' if on_delete is models.CASCADE else 'change'} {model._meta.label} rows; make it "
                "models.PROTECT (archive instead of deleting), with a migration"
            )
        if target._meta.app_label in MONEY_APPS and on_delete not in SAFE:
            problems.append(
                f"{name} points into the ledger with {on_delete.__name__}: make it models.PROTECT, so the "
                f"ledger row ({target._meta.label}) can never be deleted from under {model._meta.label}"
            )
    return problems


def _cascade_reach(registry) -> dict[str, set[str]]:
    """For each model, the models one deletion of it removes through chains of CASCADE."""
    children: dict[str, set[str]] = {}
    for model, field in _foreign_keys(registry):
        if field.remote_field.on_delete is models.CASCADE:
            children.setdefault(field.related_model._meta.label_lower, set()).add(model._meta.label_lower)
    reach = {}
    for start in children:
        seen, todo = set(), [start]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        reach[start] = seen
    return reach


def test_no_foreign_key_lets_a_deletion_remove_or_change_money():
    problems = _unsafe_links(installed_apps)
    assert not problems, "\n".join(problems)


def test_no_deletion_anywhere_cascades_into_a_model_with_money():
    money = {m._meta.label_lower for m in installed_apps.get_models() if _is_money(m)}
    assert {"ledger.entry", "ledger.transaction", "ledger.hold", "planner.job"} <= money
    problems = [
        f"deleting a {start} removes {sorted(reached & money)}"
        for start, reached in _cascade_reach(installed_apps).items()
        if reached & money
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_migrations_build_the_same_protection():
    # What the database gets is what the migrations say, not what the models say.
    state = MigrationLoader(connection, ignore_no_migrations=True).project_state()
    problems = _unsafe_links(state.apps)
    assert not problems, "\n".join(problems)


# --- the deletion paths ------------------------------------------------------------------------------


def _ledger_rows() -> dict[str, int]:
    counted = [m for m in installed_apps.get_models() if _is_money(m)]
    return {m._meta.label: m.objects.count() for m in counted}


@pytest.fixture
def world(demo, member, catalog):
    return build_team_world(demo, producer=member(Role.PRODUCER), approver=member(Role.LEAD), tag="nw")


def test_deleting_a_project_with_a_budget_is_refused_and_keeps_its_history(world):
    before = _ledger_rows()
    with pytest.raises(ProtectedError):
        world.project.delete()
    assert _ledger_rows() == before


def test_deleting_a_project_without_history_takes_only_its_scenes(member, ctx):
    from planner.models import Project
    from planner.services.projects import project_create
    from planner.services.scenes import scene_add

    draft = project_create(by=member(Role.PRODUCER), name="Scratch")
    scene_add(project=draft, ctx=ctx)
    before = _ledger_rows()
    draft.delete()
    assert not Project.objects.filter(pk=draft.pk).exists()
    assert _ledger_rows() == before


def test_removing_a_member_keeps_everything_they_did(world, member):
    producer = member(Role.PRODUCER)
    before = _ledger_rows()
    membership_remove(membership=producer)
    assert not Membership.objects.filter(pk=producer.pk).exists()
    assert _ledger_rows() == before
    world.job.refresh_from_db()
    assert world.job.launched_by == producer.user  # the person stays, with their name on the takes


def test_deleting_a_person_with_history_is_refused(world, member):
    before = _ledger_rows()
    with pytest.raises(ProtectedError):
        member(Role.PRODUCER).user.delete()
    assert _ledger_rows() == before


def test_deleting_a_team_with_credit_history_is_refused(world):
    before = _ledger_rows()
    with pytest.raises(ProtectedError):
        world.team.delete()
    assert _ledger_rows() == before


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(User.objects.create_superuser(email="root@keter.test", password="x"))
    return client


def test_the_admin_refuses_to_delete_a_team_with_history_and_says_why(world, staff_client):
    url = reverse("admin:accounts_team_delete", args=[world.team.pk])
    page = staff_client.get(url).content.decode()
    assert "Cannot delete team" in page and "archive it instead" in page
    before = _ledger_rows()
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 200 and "Cannot delete team" in response.content.decode()
    assert Team.objects.filter(pk=world.team.pk).exists() and _ledger_rows() == before


def test_the_admin_refuses_to_delete_a_person_with_history_and_says_what_to_do(world, member, staff_client):
    user = member(Role.PRODUCER).user
    page = staff_client.get(reverse("admin:accounts_user_delete", args=[user.pk])).content.decode()
    assert "Cannot delete user" in page and "untick “Active”" in page
    staff_client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})
    assert User.objects.filter(pk=user.pk).exists()


def test_the_admin_archives_a_team_instead(world, staff_client):
    response = staff_client.post(
        reverse("admin:accounts_team_changelist"),
        {"action": "archive", "_selected_action": [world.team.pk]},
        follow=True,
    )
    assert "Archived 1 team." in response.content.decode()
    world.team.refresh_from_db()
    assert world.team.is_archived


def test_the_admin_offers_no_deletion_of_ledger_rows_or_jobs(world, staff_client):
    from ledger.models import Entry
    from planner.models import Job

    for model, obj in ((Entry, Entry.objects.first()), (Job, world.job)):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_delete", args=[obj.pk])
        assert staff_client.post(url, {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=obj.pk).exists()
