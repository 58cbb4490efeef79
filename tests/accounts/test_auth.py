from django.urls import reverse

from keter.accounts.models import Membership
from keter.accounts.roles import Role


def test_it_signs_in_with_email_and_password_and_lands_on_the_team_dashboard(client, demo):
    response = client.post(
        reverse("login"), {"username": "producer@demo.keter", "password": "demo"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("planner:dashboard", args=["northwind"])
    assert b"Northwind Studio" in response.content
    assert b"Producer" in response.content


def test_it_keeps_the_typed_email_when_the_password_is_wrong(client, demo):
    response = client.post(reverse("login"), {"username": "producer@demo.keter", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct email" in response.content
    assert b'value="producer@demo.keter"' in response.content


def test_it_signs_out_with_a_post(client_as, demo):
    client = client_as(Role.VIEWER)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("planner:dashboard", args=[demo.slug])).status_code == 302


def test_it_changes_the_password_and_explains_a_mismatch(client_as, member):
    client = client_as(Role.FINANCE)
    url = reverse("password_change")
    bad = client.post(
        url, {"old_password": "demo", "new_password1": "Long-enough-42", "new_password2": "other"}
    )
    assert bad.status_code == 200
    assert "The two password fields" in bad.content.decode()
    ok = client.post(
        url, {"old_password": "demo", "new_password1": "Long-enough-42", "new_password2": "Long-enough-42"}
    )
    assert ok.status_code == 302
    user = member(Role.FINANCE).user
    user.refresh_from_db()
    assert user.check_password("Long-enough-42")


def test_it_switches_between_the_teams_a_user_belongs_to(client_as, demo, other_team, member):
    producer = member(Role.PRODUCER)
    Membership.objects.create(team=other_team, user=producer.user, role=Role.VIEWER)
    client = client_as(Role.PRODUCER)
    page = client.get(reverse("planner:dashboard", args=[demo.slug])).content.decode()
    assert reverse("planner:dashboard", args=[other_team.slug]) in page  # the switcher links the other team
    other = client.get(reverse("planner:dashboard", args=[other_team.slug]))
    assert other.status_code == 200 and "Viewer" in other.content.decode()
    # Home remembers the team used last.
    assert client.get(reverse("home")).url == reverse("planner:dashboard", args=[other_team.slug])


def test_it_tells_a_user_without_a_team_what_to_do(client, django_user_model, db):
    user = django_user_model.objects.create_user(email="alone@x.io", password="pw")
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"not in a team yet" in response.content
