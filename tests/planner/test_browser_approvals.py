import re

import pytest
from playwright.sync_api import Page, expect

from keter.accounts.roles import Role
from ledger.selectors import team_balance
from ledger.services import ledger_top_up

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, live_server, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/t/northwind/$"))


def credits(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_a_producer_submits_a_lead_approves_and_the_balance_drops_by_the_hold(
    page: Page, live_server, demo, project, make_scene
):
    ledger_top_up(team=demo, credits=5000, key="browser:top-up", reference="test")
    make_scene(model="sora-2", seconds=8, planned_takes_override=3)  # 240 + 10% = 264
    project_url = f"{live_server.url}/t/northwind/projects/{project.id}/"

    sign_in(page, live_server, "producer@demo.keter")
    page.goto(project_url)
    available_before = credits(page.locator('[data-total="available"]').inner_text())
    assert available_before == 5000
    page.get_by_role("button", name=re.compile(r"Submit for approval \(264 credits\)")).click()
    expect(page.get_by_text("Version 1 submitted")).to_be_visible()
    expect(page.get_by_text("Version 1 waits for approval")).to_be_visible()

    sign_in(page, live_server, "lead@demo.keter")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    row = page.get_by_role("row").filter(has_text="Spring campaign")
    expect(row).to_contain_text("264")
    row.get_by_role("link", name="Review").click()
    expect(page.locator('[data-figure="asks"]')).to_have_text("264")
    page.get_by_label(re.compile("Planned")).check()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approved 264 credits; they are now reserved.")).to_be_visible()

    page.goto(project_url)
    expect(page.locator('[data-total="approved"]')).to_have_text("264")
    available_after = credits(page.locator('[data-total="available"]').inner_text())
    assert available_before - available_after == 264
    assert team_balance(demo).held == 264
    expect(page.get_by_text("Credits reserved")).to_be_visible()


def test_a_lead_sees_the_shortfall_and_what_would_cover_it(
    page: Page, live_server, demo, project, make_scene, member
):
    from planner.services.approvals import budget_submit

    ledger_top_up(team=demo, credits=1000, key="browser:small", reference="test")
    make_scene(model="sora-2", seconds=12, planned_takes_override=10)  # 1,320
    version = budget_submit(project=project, by=member(Role.PRODUCER))
    sign_in(page, live_server, "lead@demo.keter")
    page.goto(f"{live_server.url}/t/northwind/approvals/{version.id}/")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("needs 1,320: 320 short")
    expect(page.get_by_role("alert")).to_contain_text("approve at most 1,000")
