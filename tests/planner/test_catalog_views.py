import pytest
from django.urls import reverse

from keter.accounts.roles import Role


def api(client, **query):
    return client.get(reverse("api-estimate"), query)


def test_the_api_returns_the_commands_json(client_as, catalog):
    response = api(client_as(Role.VIEWER), model="luma-ray2", seconds="7", quality="1080p")
    assert response.status_code == 200
    assert response.json() == {
        "model": "luma-ray2",
        "billed_seconds": 10,
        "credits_per_take": 340,
        "expected_takes": pytest.approx(2.8571, abs=1e-4),
        "planned_takes": 6,
        "expected_credits": 972,
        "planned_credits": 2040,
    }


@pytest.mark.parametrize(
    "query, message",
    [
        (
            {"model": "runway-gen4-turbo", "seconds": "7"},
            "Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s",
        ),
        ({"model": "runway-gen4-turbo", "seconds": "5", "quality": "1080p"}, "1080p is not offered"),
        ({"model": "runway-gen4", "seconds": "5", "image_refs": "0"}, "this model needs an image reference"),
        ({"model": "", "seconds": "5"}, "choose a model"),
        ({"model": "sora-2"}, "seconds is required"),
        ({"model": "sora-2", "seconds": "1e9"}, "whole number"),
        ({"model": "sora-2", "seconds": "4", "audio": "maybe"}, "audio must be on or off"),
        ({"model": "sora-2", "seconds": "4", "success_rate": "nan"}, "success rate must be above 0"),
        ({"model": "sora-2", "seconds": "4", "variants": "1000"}, "up to 100 variants"),
    ],
)
def test_the_api_answers_bad_input_with_400_and_the_message(client_as, catalog, query, message):
    response = api(client_as(Role.PRODUCER), **query)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_the_api_wants_a_signed_in_user(client, catalog):
    response = api(client, model="sora-2", seconds="4")
    assert response.status_code == 401
    assert "sign in" in response.json()["error"]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_catalog_comparison(client_as, demo, catalog, role):
    response = client_as(role).get(reverse("planner:catalog", args=[demo.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Runway Gen-4 Turbo" in page and "Luma Ray3" in page


def test_the_catalog_shows_prices_per_take_and_per_usable_take(client_as, demo, catalog):
    response = client_as(Role.PRODUCER).get(
        reverse("planner:catalog", args=[demo.slug]), {"vendor": "Runway"}
    )
    rows = {(r["entry"].model.slug, r["quality"]): r for r in response.context["rows"]}
    turbo = rows[("runway-gen4-turbo", "720p")]
    assert turbo["prices"] == [25, 50]
    assert turbo["per_usable"] == [round(25 / 0.35), round(50 / 0.35)]
    assert {slug for slug, _ in rows} == {m.model.slug for m in catalog if m.model.vendor == "Runway"}


def test_the_catalog_filters_by_quality_and_marks_what_the_plan_does_not_allow(
    client_as, demo, catalog, plans
):
    demo.plan = plans["free"]
    demo.save()
    client = client_as(Role.VIEWER)
    response = client.get(reverse("planner:catalog", args=[demo.slug]), {"quality": "1080p"})
    rows = response.context["rows"]
    assert rows and all(r["quality"] == "1080p" and not r["plan_allows"] for r in rows)
    assert "Not in your plan" in response.content.decode()
    response = client.get(reverse("planner:catalog", args=[demo.slug]), {"quality": "720p"})
    assert all(r["plan_allows"] for r in response.context["rows"])


def test_the_catalog_filter_answers_htmx_with_just_the_table(client_as, demo, catalog):
    response = client_as(Role.VIEWER).get(
        reverse("planner:catalog", args=[demo.slug]), {"vendor": "Luma AI"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert 'id="catalog-table"' in page and "<html" not in page
    assert "Luma Ray2" in page and "Runway" not in page


def test_another_team_s_catalog_url_is_404(client_as, other_team, catalog):
    assert client_as(Role.OWNER).get(reverse("planner:catalog", args=[other_team.slug])).status_code == 404
