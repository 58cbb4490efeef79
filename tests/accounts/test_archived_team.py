"""An archived team (the admin archives teams with credit history instead of deleting them) stays
readable by its members and changes nothing."""

import pytest
from django.urls import reverse

from keter.accounts.decorators import ARCHIVED
from keter.accounts.models import Membership
from planner.models import Project


@pytest.fixture
def archived(demo):
    demo.is_archived = True
    demo.save(update_fields=["is_archived"])
    return demo


def test_its_pages_stay_readable_and_say_it_is_archived(client_as, archived):
    response = client_as("owner").get(reverse("planner:dashboard", args=[archived.slug]))
    assert response.status_code == 200
    assert "is archived: its records stay readable" in response.content.decode()


@pytest.mark.parametrize("htmx", [False, True])
def test_a_change_is_refused_with_the_reason_and_writes_nothing(client_as, archived, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    before = Project.objects.filter(team=archived).count()
    response = client_as("producer").post(
        reverse("planner:project-new", args=[archived.slug]), {"name": "After the archive"}, **headers
    )
    assert response.status_code == 403
    assert ARCHIVED in response.content.decode()
    assert Project.objects.filter(team=archived).count() == before


def test_the_owner_cannot_change_its_members_either(client_as, archived, member):
    producer = member("producer")
    response = client_as("owner").post(
        reverse("accounts:member-role", args=[archived.slug, producer.pk]), {"role": "viewer"}
    )
    assert response.status_code == 403
    assert Membership.objects.get(pk=producer.pk).role == "producer"


def test_a_team_that_is_not_archived_says_nothing_of_it(client_as, demo):
    response = client_as("owner").get(reverse("planner:dashboard", args=[demo.slug]))
    assert "is archived" not in response.content.decode()
