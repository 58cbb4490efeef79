import re

import pytest
from playwright.sync_api import Page, expect

from keter.accounts.navigation import NAV
from keter.accounts.roles import Role, can

# Tests that touch the database from a live server need the committed data a real request would see.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, live_server, email: str, password: str = "demo") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("role", list(Role))
def test_each_demo_role_signs_in_and_sees_its_navigation(page: Page, live_server, demo, role):
    sign_in(page, live_server, f"{role.value}@demo.keter")
    expect(page).to_have_url(re.compile(r"/t/northwind/$"))
    expect(page.get_by_role("heading", name="Northwind Studio")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for entry in NAV:
        link = nav.get_by_role("link", name=entry.label, exact=True)
        expect(link).to_have_count(1 if can(role, entry.action) else 0)
    expect(page.locator(".role-pill")).to_have_text(role.label)


def test_a_wrong_password_shows_a_message_and_keeps_the_email(page: Page, live_server, demo):
    sign_in(page, live_server, "lead@demo.keter", password="wrong")
    expect(page.get_by_text("Please enter a correct email")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value("lead@demo.keter")
