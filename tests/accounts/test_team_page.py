import pytest
from django.core import mail
from django.urls import reverse

from keter.accounts.models import Membership, User
from keter.accounts.roles import Role

ALL_ROLES = [r.value for r in Role]
MANAGE_URLS = ["accounts:member-add", "accounts:member-role", "accounts:member-remove"]


def team_url(team, name="accounts:team", *args):
    return reverse(name, args=[team.slug, *args])


@pytest.mark.parametrize("role", ALL_ROLES)
def test_it_shows_the_team_page_to_every_role_of_the_team(client_as, demo, role):
    response = client_as(role).get(team_url(demo))
    assert response.status_code == 200
    assert b"owner@demo.keter" in response.content
    assert (b"Add a member" in response.content) == (role == Role.OWNER)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_it_lets_only_the_owner_manage_members(client_as, demo, member, role):
    client = client_as(role)
    target = member(Role.VIEWER)
    responses = [
        client.post(team_url(demo, "accounts:member-add"), {"email": "new@demo.keter", "role": "viewer"}),
        client.post(team_url(demo, "accounts:member-role", target.id), {"role": "producer"}),
        client.post(team_url(demo, "accounts:member-remove", target.id)),
    ]
    if role == Role.OWNER:
        assert [r.status_code for r in responses] == [302, 302, 302]
        assert not Membership.objects.filter(id=target.id).exists()
    else:
        assert [r.status_code for r in responses] == [403, 403, 403]
        assert Membership.objects.get(id=target.id).role == Role.VIEWER
        assert not User.objects.filter(email="new@demo.keter").exists()


@pytest.mark.parametrize("role", ALL_ROLES)
def test_it_hides_another_teams_page_and_members_behind_404(client_as, other_team, role):
    client = client_as(role)
    foreign = Membership.objects.filter(team=other_team).first()
    assert client.get(team_url(other_team)).status_code == 404
    assert (
        client.post(
            team_url(other_team, "accounts:member-add"), {"email": "x@y.z", "role": "owner"}
        ).status_code
        == 404
    )
    assert client.post(team_url(other_team, "accounts:member-remove", foreign.id)).status_code == 404


def test_it_treats_another_teams_member_id_on_my_team_url_as_404(client_as, demo, other_team):
    foreign = Membership.objects.filter(team=other_team).first()
    client = client_as(Role.OWNER)
    assert (
        client.post(team_url(demo, "accounts:member-role", foreign.id), {"role": "viewer"}).status_code == 404
    )
    assert client.post(team_url(demo, "accounts:member-remove", foreign.id)).status_code == 404
    assert Membership.objects.filter(id=foreign.id).exists()


def test_it_sends_anonymous_visitors_to_the_login_page(client, demo):
    response = client.get(team_url(demo))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_it_adds_a_new_person_and_emails_them_an_invitation(
    client_as, demo, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(Role.OWNER).post(
            team_url(demo, "accounts:member-add"),
            {"email": "Newcomer@Example.com", "name": "Nia", "role": "producer"},
        )
    assert response.status_code == 302
    user = User.objects.get(email="newcomer@example.com")
    assert not user.has_usable_password()
    assert Membership.objects.get(team=demo, user=user).role == Role.PRODUCER
    assert len(mail.outbox) == 1
    assert "reset" in mail.outbox[0].body and "newcomer@example.com" in mail.outbox[0].body


def test_it_adds_an_existing_user_from_another_team(client_as, demo, outsider):
    client_as(Role.OWNER).post(
        team_url(demo, "accounts:member-add"), {"email": outsider.email, "role": "viewer"}
    )
    assert Membership.objects.get(team=demo, user=outsider).role == Role.VIEWER


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "", "role": "viewer"}, "email", "This field is required."),
        ({"email": "not-an-email", "role": "viewer"}, "email", "Enter a valid email address."),
        ({"email": "a" * 250 + "@x.io", "role": "viewer"}, "email", "Ensure this value has at most 254"),
        ({"email": "ok@x.io", "role": "emperor"}, "role", "Select a valid choice."),
        ({"email": "ok@x.io", "name": "n" * 121, "role": "viewer"}, "name", "at most 120 characters"),
        (
            {"email": "producer@demo.keter", "role": "viewer"},
            "email",
            "is already a member of Northwind Studio",
        ),
    ],
)
def test_it_explains_bad_member_input_next_to_the_field_and_keeps_it(client_as, demo, data, field, message):
    before = Membership.objects.count()
    response = client_as(Role.OWNER).post(team_url(demo, "accounts:member-add"), data)
    assert response.status_code == 422
    form = response.context["add_form"]
    assert any(message in error for error in form.errors[field])
    assert form.data["email"] == data["email"]
    assert Membership.objects.count() == before
    # The typed email is rendered back into the field.
    assert f'value="{data["email"]}"'.encode() in response.content or data["email"] == ""


def test_it_never_demotes_or_removes_the_last_owner(client_as, demo, member):
    owner = member(Role.OWNER)
    client = client_as(Role.OWNER)
    response = client.post(team_url(demo, "accounts:member-role", owner.id), {"role": "viewer"})
    assert response.status_code == 422
    assert "at least one owner" in response.content.decode()
    response = client.post(team_url(demo, "accounts:member-remove", owner.id))
    assert response.status_code == 422
    assert "last owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_it_lets_an_owner_step_down_once_there_is_another_owner(client_as, demo, member):
    client = client_as(Role.OWNER)
    lead = member(Role.LEAD)
    client.post(team_url(demo, "accounts:member-role", lead.id), {"role": "owner"})
    owner = Membership.objects.get(team=demo, user__email="owner@demo.keter")
    assert (
        client.post(team_url(demo, "accounts:member-role", owner.id), {"role": "viewer"}).status_code == 302
    )
    owner.refresh_from_db()
    assert owner.role == Role.VIEWER


def test_it_rejects_an_unknown_role_when_changing_roles(client_as, demo, member):
    target = member(Role.VIEWER)
    response = client_as(Role.OWNER).post(team_url(demo, "accounts:member-role", target.id), {"role": "king"})
    assert response.status_code == 422
    assert "Choose one of the listed roles" in response.content.decode()


def test_the_owner_sets_the_low_balance_threshold(client_as, demo):
    response = client_as(Role.OWNER).post(
        team_url(demo, "accounts:team-alerts"), {"low_balance_threshold": "500"}
    )
    assert response.status_code == 302
    demo.refresh_from_db()
    assert demo.low_balance_threshold == 500


@pytest.mark.parametrize(
    "value, message", [("-1", "Enter 0 or more"), ("lots", "whole number"), ("", "required")]
)
def test_a_bad_threshold_is_explained_and_kept(client_as, demo, value, message):
    response = client_as(Role.OWNER).post(
        team_url(demo, "accounts:team-alerts"), {"low_balance_threshold": value}
    )
    assert response.status_code == 422 and message in response.content.decode()
    assert f'value="{value}"'.encode() in response.content or value == ""
    demo.refresh_from_db()
    assert demo.low_balance_threshold == 0


@pytest.mark.parametrize("role", [Role.LEAD, Role.PRODUCER, Role.FINANCE, Role.VIEWER])
def test_only_the_owner_sets_alerts(client_as, demo, role):
    assert (
        client_as(role)
        .post(team_url(demo, "accounts:team-alerts"), {"low_balance_threshold": "5"})
        .status_code
        == 403
    )
