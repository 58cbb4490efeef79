"""The scene-list editor in Chromium: live totals while typing, messages next to the field, reorder, roles,
what-if and undoable deletes. Projects are built through services unless the scenario is about the UI."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from keter.accounts.models import User
from keter.accounts.roles import Role
from planner.models import Project, Scene
from planner.pricing import price_scene, pricing_context
from planner.services.projects import project_create
from planner.services.scenes import scene_add
from planner.services.whatif import whatif_preview

# The live server commits what it writes; the test thread reads it back through the ORM.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/t/northwind/$"))


def sign_in_by_cookie(page: Page, live_server, client, email: str) -> None:
    """The first scenario signs in through the form; the others start from a session, to stay fast."""
    client.force_login(User.objects.get(email=email))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )


def credits(n: int) -> str:
    return f"{n:,}"  # what |intcomma shows


def make_project(member, titles: list[str], *, model: str = "runway-gen4-turbo", seconds: int = 5) -> Project:
    producer = member(Role.PRODUCER)
    project = project_create(by=producer, name="Spring campaign")
    ctx = pricing_context(producer.team)
    for title in titles:
        scene_add(project=project, ctx=ctx, data={"title": title, "model": model, "seconds": str(seconds)})
    return project


def open_project(
    page: Page, live_server, client, project: Project, email: str = "producer@demo.keter"
) -> None:
    sign_in_by_cookie(page, live_server, client, email)
    page.goto(f"{live_server.url}/t/northwind/projects/{project.id}/")
    expect(page.get_by_role("heading", name=project.name)).to_be_visible()


def scene(project: Project, title: str) -> Scene:
    return project.scenes.get(title=title)


def retype(page: Page, field, text: str) -> None:
    """Replace a field's text by typing it key by key, so the browser fires real input events."""
    field.click()
    field.press("ControlOrMeta+a")
    field.press_sequentially(text)


def expect_titles(page: Page, titles: list[str]) -> None:
    rows = page.locator("#scene-list > li.scene")
    expect(rows).to_have_count(len(titles))
    for index, title in enumerate(titles):
        expect(rows.nth(index).locator("input[name=title]")).to_have_value(title)


def test_a_producer_types_a_length_and_sees_cost_and_totals_change_without_losing_the_field(
    page: Page, live_server, demo, catalog
):
    sign_in(page, live_server, "producer@demo.keter")
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("link", name="+ New project").click()
    page.get_by_label("Name").fill("Launch film")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Launch film")).to_be_visible()

    totals = page.locator("#project-totals")
    for count in (1, 2, 3):
        page.get_by_role("button", name="+ Add scene").click()
        expect(page.locator("#scene-list > li.scene")).to_have_count(count)
        expect(totals.locator('[data-total="scenes"]')).to_have_text(str(count))

    project = Project.objects.get(name="Launch film", team=demo)
    second = project.scenes.get(position=1)
    assert (second.video_model.slug, second.seconds) == ("runway-gen4-turbo", 5)  # the catalog's first model
    longer = Scene.objects.get(pk=second.pk)
    longer.seconds = 10
    price_scene(longer, pricing_context(demo))
    assert longer.planned_credits != second.planned_credits
    planned_after = 2 * second.planned_credits + longer.planned_credits
    cost = page.locator(f"#scene-{second.id}-cost strong")
    expect(cost).to_have_text(credits(second.planned_credits))
    expect(totals.locator('[data-total="planned"]')).to_have_text(credits(3 * second.planned_credits))

    page.evaluate("window.__marker = 1")  # a reload would lose it
    seconds = page.locator(f"#scene-{second.id}-seconds")
    # htmx would even re-focus a replacement with the same id: hold the node itself to prove it stays.
    seconds.evaluate("field => { window.__field = field }")
    retype(page, seconds, "10")

    expect(cost).to_have_text(credits(longer.planned_credits))
    expect(totals.locator('[data-total="planned"]')).to_have_text(credits(planned_after))
    expect(seconds).to_be_focused()
    assert page.evaluate("document.activeElement.id") == f"scene-{second.id}-seconds"
    expect(seconds).to_have_value("10")
    assert page.evaluate("window.__marker") == 1
    assert page.evaluate("document.activeElement === window.__field && window.__field.isConnected")
    second.refresh_from_db()
    assert second.seconds == 10


def test_an_invalid_length_shows_the_engines_message_and_keeps_what_was_typed(
    page: Page, live_server, client, member, catalog
):
    project = make_project(member, ["Opening"], model="kling-2-6")
    opening = scene(project, "Opening")
    open_project(page, live_server, client, project)
    with page.expect_response(re.compile(rf"/scenes/{opening.id}/$")):
        page.locator(f"#scene-{opening.id}-model").select_option("runway-gen4-turbo")
    totals = page.locator("#project-totals")
    expect(totals.get_by_role("alert")).to_have_count(0)

    seconds = page.locator(f"#scene-{opening.id}-seconds")
    message = page.locator(f"#scene-{opening.id}-err-seconds")
    retype(page, seconds, "7")
    expect(message).to_have_text("Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s")
    expect(seconds).to_have_value("7")
    expect(seconds).to_have_attribute("aria-invalid", "true")
    expect(seconds).to_be_focused()
    expect(totals.get_by_role("alert")).to_have_text(re.compile(r"1 scene needs fixing"))
    expect(totals.locator('[data-total="planned"]')).to_have_text("0")
    expect(page.locator(f"#scene-{opening.id}-cost")).to_contain_text("invalid")
    expect(page.locator(f"#scene-{opening.id}-state")).to_have_text("needs fixing")

    retype(page, seconds, "abc")
    expect(message).to_have_text("Enter the length in whole seconds")
    expect(seconds).to_have_value("abc")

    page.reload()
    expect(seconds).to_have_value("abc")
    expect(message).to_have_text("Enter the length in whole seconds")
    expect(totals.get_by_role("alert")).to_have_text(re.compile(r"1 scene needs fixing"))

    retype(page, seconds, "10")
    expect(message).to_have_text("")
    expect(seconds).not_to_have_attribute("aria-invalid", "true")
    expect(totals.get_by_role("alert")).to_have_count(0)


def test_a_reorder_with_the_arrow_buttons_survives_a_reload(page: Page, live_server, client, member, catalog):
    project = make_project(member, ["Opening", "Middle", "Closing"])
    open_project(page, live_server, client, project)
    expect_titles(page, ["Opening", "Middle", "Closing"])

    page.get_by_role("button", name="Move Closing up").click()
    expect_titles(page, ["Opening", "Closing", "Middle"])
    page.get_by_role("button", name="Move Opening down").click()
    expect_titles(page, ["Closing", "Opening", "Middle"])
    expect(page.locator("#scene-list .scene-number")).to_have_text(["1", "2", "3"])

    page.reload()
    expect_titles(page, ["Closing", "Opening", "Middle"])


def test_a_reorder_by_drag_and_drop_survives_a_reload(page: Page, live_server, client, member, catalog):
    project = make_project(member, ["Opening", "Middle", "Closing"])
    # Every row on screen: Playwright would otherwise scroll mid-drag and drop the row onto itself.
    page.set_viewport_size({"width": 1280, "height": 1400})
    open_project(page, live_server, client, project)
    rows = page.locator("#scene-list > li.scene")
    # Grab the row by its number, not by an input (dragging from a field selects text instead).
    with page.expect_response(re.compile(r"/scenes/reorder/$")) as reorder:
        rows.nth(0).locator(".scene-number").drag_to(
            rows.nth(2), target_position={"x": 10, "y": rows.nth(2).bounding_box()["height"] - 5}
        )
    assert reorder.value.status == 204
    expect_titles(page, ["Middle", "Closing", "Opening"])
    expect(page.locator("#scene-list .scene-number")).to_have_text(["1", "2", "3"])

    page.reload()
    expect_titles(page, ["Middle", "Closing", "Opening"])


def test_a_viewer_sees_the_scenes_without_any_edit_control(page: Page, live_server, client, member, catalog):
    project = make_project(member, ["Opening", "Closing"])
    open_project(page, live_server, client, project, email="viewer@demo.keter")
    scene_list = page.locator("#scene-list")
    expect(scene_list.locator("li.scene")).to_have_count(2)
    expect(scene_list.get_by_text("Opening", exact=True)).to_be_visible()
    expect(scene_list.locator("input, select, textarea, button")).to_have_count(0)
    expect(scene_list.locator("[draggable=true], [hx-post]")).to_have_count(0)
    expect(page.get_by_role("button", name="+ Add scene")).to_have_count(0)
    expect(page.locator("#whatif-form")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit brief")).to_have_count(0)
    expect(page.get_by_role("link", name="Import CSV")).to_have_count(0)
    expect(page.locator('#project-totals [data-total="scenes"]')).to_have_text("2")


def test_what_if_compares_two_scenes_on_another_model_then_applies_or_discards(
    page: Page, live_server, client, demo, member, catalog
):
    project = make_project(member, ["Opening", "Middle", "Closing"])
    opening, middle, closing = (scene(project, t) for t in ("Opening", "Middle", "Closing"))
    expected = whatif_preview(
        project=project, ctx=pricing_context(demo), scene_ids=[opening.id, closing.id], model="kling-2-6"
    )
    assert expected.delta != 0 and expected.invalid_after == 0
    open_project(page, live_server, client, project)

    def compare():
        page.get_by_label("Select Opening for what-if").check()
        page.get_by_label("Select Closing for what-if").check()
        page.locator("#whatif-model").select_option("kling-2-6")
        page.get_by_role("button", name="Compare").click()

    result = page.locator("#whatif-result")
    compare()
    expect(result.locator("tbody tr")).to_have_count(2)
    expect(result.locator("tbody tr").nth(0)).to_contain_text("Opening")
    expect(result.locator("tbody tr").nth(0)).to_contain_text("Kling 2.6")
    expect(result.locator("tbody tr").nth(1)).to_contain_text("Closing")
    expect(result.locator('[data-whatif="before"]')).to_have_text(credits(expected.before.total_credits))
    expect(result.locator('[data-whatif="after"]')).to_have_text(credits(expected.after.total_credits))

    result.get_by_role("button", name="Discard").click()
    expect(result.locator("table")).to_have_count(0)
    assert {s.video_model.slug for s in project.scenes.all()} == {"runway-gen4-turbo"}

    compare()
    result.get_by_role("button", name="Apply to 2 scenes").click()
    expect(page.get_by_text("Applied to 2 scenes.")).to_be_visible()  # after the refresh the server asked for
    expect(page.locator(f"#scene-{opening.id}-model")).to_have_value("kling-2-6")
    expect(page.locator(f"#scene-{closing.id}-model")).to_have_value("kling-2-6")
    expect(page.locator(f"#scene-{middle.id}-model")).to_have_value("runway-gen4-turbo")
    expect(page.locator('#project-totals [data-total="total"]')).to_have_text(
        credits(expected.after.total_credits)
    )
    expect(result.locator("table")).to_have_count(0)


def test_a_deleted_scene_leaves_the_totals_and_undo_brings_it_back(
    page: Page, live_server, client, member, catalog
):
    project = make_project(member, ["Opening", "Middle"])
    opening, middle = scene(project, "Opening"), scene(project, "Middle")
    open_project(page, live_server, client, project)
    totals = page.locator("#project-totals")
    both = credits(opening.planned_credits + middle.planned_credits)
    expect(totals.locator('[data-total="planned"]')).to_have_text(both)

    page.locator(f"#scene-{middle.id}").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("“Middle” deleted.")).to_be_visible()
    expect(totals.locator('[data-total="planned"]')).to_have_text(credits(opening.planned_credits))
    expect(totals.locator('[data-total="scenes"]')).to_have_text("1")

    page.get_by_role("button", name="Undo").click()
    expect_titles(page, ["Opening", "Middle"])
    expect(totals.locator('[data-total="planned"]')).to_have_text(both)
    expect(totals.locator('[data-total="scenes"]')).to_have_text("2")
    middle.refresh_from_db()
    assert middle.deleted_at is None
