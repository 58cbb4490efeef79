import pytest
from django.urls import reverse

from keter.accounts.roles import Role


def test_healthz_answers_ok_when_the_database_and_the_broker_answer(client, db, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_answers_503_when_the_broker_is_down(client, db, monkeypatch):
    from keter import health

    monkeypatch.setattr(health, "_broker", lambda: "down: OperationalError")
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["broker"].startswith("down")


def test_every_page_carries_a_strict_content_security_policy(client_as, demo):
    response = client_as(Role.VIEWER).get(reverse("planner:dashboard", args=[demo.slug]))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_htmx_posts_without_the_csrf_token_are_refused(demo, member):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(member(Role.OWNER).user)
    response = client.post(
        reverse("accounts:team-alerts", args=[demo.slug]),
        {"low_balance_threshold": "5"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 403
    demo.refresh_from_db()
    assert demo.low_balance_threshold == 0


def test_sign_in_is_locked_after_five_wrong_passwords(client, demo):
    url = reverse("login")
    for _ in range(4):
        assert client.post(url, {"username": "lead@demo.keter", "password": "nope"}).status_code == 200
    fifth = client.post(url, {"username": "lead@demo.keter", "password": "nope"})
    assert fifth.status_code == 429 and "Too many sign-in attempts" in fifth.content.decode()
    # Even the right password waits out the cool-off.
    assert client.post(url, {"username": "lead@demo.keter", "password": "demo"}).status_code == 429
    # Another account from the same address is not affected.
    assert client.post(url, {"username": "viewer@demo.keter", "password": "demo"}).status_code == 302


@pytest.mark.parametrize("path", ["/healthz"])
def test_the_health_check_needs_no_sign_in(client, db, path):
    assert client.get(path).status_code in {200, 503}
