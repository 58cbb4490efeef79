from pathlib import Path

import pytest
from django.urls import reverse

from keter.accounts.navigation import NAV
from keter.accounts.roles import MATRIX, Role, can, matrix_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("role", list(Role))
def test_it_shows_each_role_exactly_the_navigation_the_matrix_allows(client_as, demo, role):
    page = client_as(role).get(reverse("planner:dashboard", args=[demo.slug])).content.decode()
    for entry in NAV:
        link = f'href="{reverse(entry.url_name, args=[demo.slug])}"'
        assert (link in page) == can(role, entry.action), entry.label


def test_it_documents_the_permission_matrix_in_the_readme():
    assert matrix_markdown() in README.read_text()


def test_every_navigation_entry_names_an_action_of_the_matrix():
    assert {entry.action for entry in NAV} <= set(MATRIX)
