"""In Chromium: the producer launches takes, watches the queue page move them to done (a real Celery
worker runs in this process), then marks keepers until the scene is ready for editing."""

import re

import pytest
from playwright.sync_api import Page, expect

from keter.accounts.roles import Role
from planner.models import VideoModel
from planner.services import renders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scene(project, make_scene, approve, monkeypatch, settings):
    # Every take comes out, so the story is the same on every run; renders take about a second.
    VideoModel.objects.filter(slug="sora-2").update(success_rate=1)
    monkeypatch.setattr(renders, "MODERATION_RATE", 0)
    settings.KETER_SIM_SPEED = 1 / 32
    scene = make_scene(title="Harbour at dawn", model="sora-2", seconds=4, variants=2)
    approve(project)
    return scene


def test_the_producer_launches_takes_watches_them_render_and_picks_keepers(
    page: Page, live_server, scene, project, celery_worker, member
):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(member(Role.PRODUCER).user.email)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/t/northwind/$"))

    page.goto(f"{live_server.url}/t/northwind/projects/{project.id}/")
    row = page.locator(f"#scene-{scene.id}-takes")
    expect(row).to_contain_text("0 of 2 keepers")
    row.get_by_label("Takes to launch for Harbour at dawn").fill("3")
    row.get_by_role("button", name="Launch takes").click()
    expect(page.locator("#messages")).to_contain_text("Launched 3 takes for 120 credits")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queue").click()
    board = page.locator("#queue-board")
    expect(board).to_contain_text("of 3")
    # The board refreshes itself every 2 s until every take is done.
    expect(board.locator('tr[data-state="succeeded"]')).to_have_count(3, timeout=20_000)
    expect(board).to_contain_text("running 0 of 3")

    board.get_by_role("link", name=re.compile("take 1")).click()
    panel = page.locator("#takes-panel")
    expect(panel).to_contain_text("0 of 2 keepers")
    panel.get_by_role("button", name="Keeper: take 1").click()
    expect(panel).to_contain_text("1 of 2 keepers")
    expect(panel).not_to_contain_text("Ready for editing")
    panel.get_by_role("button", name="Reject: take 2").click()
    expect(panel.locator("li.take-card", has_text="Take 2")).to_have_attribute("data-verdict", "rejected")
    panel.get_by_role("button", name="Keeper: take 3").click()
    expect(panel).to_contain_text("2 of 2 keepers")
    expect(panel.get_by_text("Ready for editing")).to_be_visible()

    page.goto(f"{live_server.url}/t/northwind/projects/{project.id}/")
    expect(page.locator(f"#scene-{scene.id}-takes")).to_contain_text("ready for editing")
    # Ready for hand-over, except that the scene took a take more than its plan (and its credits).
    checklist = page.locator(".checklist")
    expect(checklist.locator(".check-ok")).to_have_count(4)
    expect(checklist.locator(".check-ok", has_text="Ready for editing")).to_have_count(1)
    expect(checklist.locator(".check-todo", has_text="Repeat generations")).to_contain_text(
        "took more takes than planned"
    )
