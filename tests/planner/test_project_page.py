"""The project page's submit card: what a producer (or owner) is offered in each state of the budget."""

import re

import pytest
from django.urls import reverse

from keter.accounts.roles import Role
from planner.pricing import pricing_context
from planner.services.approvals import budget_submit
from planner.services.scenes import scene_update


def submit_card(client, project) -> str | None:
    """The text of the submit card, or None when the page has none."""
    page = client.get(reverse("planner:project", args=[project.team.slug, project.id])).content.decode()
    card = re.search(r'<section class="card submit-box"[^>]*>(.*?)</section>', page, re.S)
    return None if card is None else " ".join(re.sub(r"<[^>]+>", " ", card.group(1)).split())


@pytest.mark.parametrize("role", [Role.PRODUCER, Role.OWNER])
def test_an_approved_project_shows_its_approved_budget_instead_of_an_empty_card(client_as, approved, role):
    card = submit_card(client_as(role), approved)
    assert card == (
        "Budget approved Version 1 approved: 264 credits reserved for this project. "
        "Edits that push the plan past it need a change order."
    )


def test_a_draft_project_offers_to_submit_its_total(client_as, project, sora_scene):
    card = submit_card(client_as(Role.PRODUCER), project)
    assert card.startswith("Ready for approval?") and "Submit for approval (264 credits)" in card


def test_a_submitted_project_says_its_version_waits_for_approval(client_as, project, sora_scene, member):
    budget_submit(project=project, by=member(Role.PRODUCER))
    assert submit_card(client_as(Role.PRODUCER), project).startswith("Version 1 waits for approval")


def test_an_approved_project_over_its_budget_offers_a_change_order(client_as, approved, sora_scene, demo):
    scene_update(scene=sora_scene, data={"planned_takes_override": "5"}, ctx=pricing_context(demo))
    card = submit_card(client_as(Role.PRODUCER), approved)
    assert card.startswith("Ask for a change order") and "Submit change order (+176)" in card


@pytest.mark.parametrize("role", [Role.LEAD, Role.FINANCE, Role.VIEWER])
def test_roles_that_cannot_submit_get_no_submit_card(client_as, approved, role):
    assert submit_card(client_as(role), approved) is None
