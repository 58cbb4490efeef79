"""Every URL × every role × own team / another team, checked against the permission matrix (issue #9).

The walker reads the URL configuration itself (`tests/urlwalk.py`), so a view added later is requested too.
Each route needs an entry below: team views (`/t/<slug>/...`) in TEAM_URLS with the matrix action their
`team_view` decorator checks and the methods they answer; everything else in SITE_URLS (or the admin's
rules). A route without one fails `test_every_url_has_an_entry_in_the_walkers_expectations`, saying what
to add.
"""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import reverse

from keter.accounts.models import Membership, User
from keter.accounts.roles import MATRIX, Role, can
from tests.urlwalk import OBJECT_PARAMS, Route, build_team_world, routes

GET, POST, BOTH = ("GET",), ("POST",), ("GET", "POST")

# name -> (matrix action, methods the view answers); any other method must answer 405.
TEAM_URLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "accounts:team": ("team.view", GET),
    "accounts:team-alerts": ("team.manage", POST),
    "accounts:member-add": ("team.manage", POST),
    "accounts:member-role": ("team.manage", POST),
    "accounts:member-remove": ("team.manage", POST),
    "ledger:credits": ("credits.view", GET),
    "ledger:top-up": ("credits.manage", POST),
    "ledger:grant": ("credits.manage", POST),
    "ledger:adjust": ("credits.manage", POST),
    "ledger:balance-report": ("reports.view", GET),
    "ledger:register-csv": ("reports.export", GET),
    "ledger:register-xlsx": ("reports.export", GET),
    "ledger:journal": ("reports.export", GET),
    "planner:dashboard": ("dashboard.view", GET),
    "planner:catalog": ("catalog.view", GET),
    "planner:projects": ("project.view", GET),
    "planner:project-new": ("project.edit", BOTH),
    "planner:project": ("project.view", GET),
    "planner:project-edit": ("project.edit", BOTH),
    "planner:scene-add": ("project.edit", POST),
    "planner:scenes-reorder": ("project.edit", POST),
    "planner:scenes-export": ("project.view", GET),
    "planner:scenes-import": ("project.edit", BOTH),
    "planner:whatif": ("project.edit", POST),
    "planner:whatif-apply": ("project.edit", POST),
    "planner:project-submit": ("project.submit", POST),
    "planner:project-cancel": ("approval.decide", POST),
    "planner:project-deliver": ("project.submit", POST),
    "planner:plan-launch": ("queue.launch", POST),
    "planner:queue": ("queue.view", GET),
    "planner:job-cancel": ("queue.launch", POST),
    "planner:approvals": ("approval.view", GET),
    "planner:approval": ("approval.view", GET),
    "planner:approval-approve": ("approval.decide", POST),
    "planner:approval-reject": ("approval.decide", POST),
    "planner:approval-send-back": ("approval.decide", POST),
    "planner:approval-withdraw": ("project.submit", POST),
    "planner:reports": ("reports.view", GET),
    "planner:usage-csv": ("reports.export", GET),
    "planner:usage-xlsx": ("reports.export", GET),
    "planner:costs-csv": ("reports.export", GET),
    "planner:notifications": ("dashboard.view", GET),
    "planner:notifications-read": ("dashboard.view", POST),
    "planner:scene-update": ("project.edit", POST),
    "planner:scene-duplicate": ("project.edit", POST),
    "planner:scene-delete": ("project.edit", POST),
    "planner:scene-restore": ("project.edit", POST),
    "planner:scene-move": ("project.edit", POST),
    "planner:scene-launch": ("queue.launch", POST),
    "planner:scene-takes": ("queue.view", GET),
    "planner:take-judge": ("queue.launch", POST),
}

# Who may use a route outside the teams:
#   public    answers anyone (never a redirect to sign in)
#   signed-in sends the anonymous to the sign-in page, answers any signed-in person
#   api       answers the anonymous 401 with a JSON error instead of a redirect
SITE_URLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "home": ("signed-in", GET),
    "healthz": ("public", GET),
    "api-estimate": ("api", GET),
    "login": ("public", BOTH),
    "logout": ("public", POST),
    "password_change": ("signed-in", BOTH),
    "password_change_done": ("signed-in", GET),
    "password_reset": ("public", BOTH),
    "password_reset_done": ("public", GET),
    "password_reset_confirm": ("public", GET),
    "password_reset_complete": ("public", GET),
}
# Values for the auth routes' own parameters: a reset link that is not valid (the page says so).
SITE_PARAMS = {"uidb64": "MQ", "token": "set-password"}

# The admin is for staff: every route of its namespace sends anyone else to the admin's sign-in page, except
# these, which anyone may reach. Static files are served by whitenoise, outside the URL configuration
# (`test_static_files_need_no_sign_in`).
ADMIN_PUBLIC = {"admin:login": BOTH, "admin:logout": POST}

LOGIN = reverse("login")


def _check(route: Route) -> str | None:
    """What the walker's expectations lack for this route, as an instruction, or None."""
    if route.name.startswith("admin:"):
        return None
    if not route.is_team_scoped:
        if route.name not in SITE_URLS:
            return (
                f"{route.name} ({route.pattern}) is not a team page and has no entry: add "
                f"'{route.name}': ('public' | 'signed-in' | 'api', methods) to SITE_URLS in {__file__}"
            )
        return None
    if "<unnamed" in route.name:
        return f"{route.pattern} has no name: give its path() a name= (the walker reverses it by name)"
    action = route.action
    if action is None:
        return (
            f"{route.name} ({route.pattern}) checks no matrix action: decorate its view with "
            "@team_view('<action>') (keter/accounts/decorators.py; actions in keter/accounts/roles.py MATRIX)"
        )
    if action not in MATRIX:
        return f"{route.name} checks '{action}', which is not in MATRIX: add it to keter/accounts/roles.py"
    unknown = [p for p in route.params if p not in OBJECT_PARAMS]
    if unknown:
        return (
            f"{route.name} takes {unknown}, which the walker cannot fill: add an object of that kind to "
            "TeamWorld.params in tests/urlwalk.py"
        )
    if route.name not in TEAM_URLS:
        return f"{route.name} ({route.pattern}) has no entry: add '{route.name}': ('{action}', GET | POST | BOTH) to TEAM_URLS in {__file__}"  # noqa: E501
    expected_action, _ = TEAM_URLS[route.name]
    if expected_action != action:
        return f"{route.name}: its view checks '{action}' but TEAM_URLS says '{expected_action}': fix one"
    return None


def test_every_url_has_an_entry_in_the_walkers_expectations():
    found = routes()
    problems = [problem for route in found if (problem := _check(route))]
    names = {route.name for route in found}
    for table, entries in (("TEAM_URLS", TEAM_URLS), ("SITE_URLS", SITE_URLS)):
        problems += [
            f"{name} is no longer a URL: remove it from {table}" for name in entries if name not in names
        ]
    assert not problems, "\n".join(problems)


def test_every_matrix_action_guards_at_least_one_url():
    # An action no view checks is a right that protects nothing: a view lost its decorator, or the matrix
    # has a stale line.
    assert set(MATRIX) <= {route.action for route in routes()}


# --- the walk -----------------------------------------------------------------------------------------


def _client(user: User | None = None) -> Client:
    # A 500 comes back as a response (with .exc_info), so one walk reports every broken route at once.
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def _request(client: Client, method: str, url: str, headers: dict | None = None):
    """Request in a savepoint rolled back afterwards: each request sees the same world."""
    with transaction.atomic():
        if method == "POST":
            response = client.post(url, {}, headers=headers)
        else:
            response = client.generic(method, url, headers=headers)
        transaction.set_rollback(True)
    return response


def _explain(response) -> str:
    if response.status_code >= 500 and getattr(response, "exc_info", None):
        return f"{response.status_code} {response.exc_info[1]!r}"
    if response.status_code in {301, 302}:
        return f"{response.status_code} → {response['Location']}"
    return str(response.status_code)


def _is_login_redirect(response, login_url: str = LOGIN) -> bool:
    return response.status_code == 302 and response["Location"].startswith(f"{login_url}?next=")


@pytest.fixture
def worlds(demo, other_team, member, catalog):
    """Northwind with one object behind every parameter, and Blue Harbor with its own."""
    northwind = build_team_world(demo, producer=member(Role.PRODUCER), approver=member(Role.LEAD), tag="nw")
    harbor_members = {m.role: m for m in other_team.memberships.all()}
    harbor = build_team_world(
        other_team, producer=harbor_members[Role.PRODUCER], approver=harbor_members[Role.OWNER], tag="bh"
    )
    return northwind, harbor


def test_every_team_url_answers_each_role_as_the_permission_matrix_says(worlds, member, outsider):
    northwind, harbor = worlds
    anonymous = _client()
    by_role = {role: _client(member(role).user) for role in Role}
    stranger = _client(outsider)  # Blue Harbor's owner: every right, in another team
    problems: list[str] = []

    def expect(what: str, response, ok: bool) -> None:
        if not ok or response.status_code >= 500:
            problems.append(f"{what}: got {_explain(response)}")

    # A route with a missing or wrong entry is reported by the test above; the walk checks the others.
    walked = [r for r in routes() if r.is_team_scoped and _check(r) is None]
    for route in walked:
        action, methods = TEAM_URLS[route.name]
        url = northwind.url(route)
        for method in methods:
            where = f"{method} {url} ({route.name}, {action})"
            response = _request(anonymous, method, url)
            expect(f"{where} as anonymous should go to sign-in", response, _is_login_redirect(response))
            for role, client in by_role.items():
                response = _request(client, method, url)
                if can(role, action):
                    expect(f"{where} as {role} is allowed", response, response.status_code not in {403, 404})
                    # The same request from htmx answers a partial (or a redirect), never an error page.
                    response = _request(client, method, url, {"HX-Request": "true"})
                    expect(f"{where} as {role} from htmx", response, response.status_code not in {403, 404})
                else:
                    expect(f"{where} as {role} should be 403", response, response.status_code == 403)
            response = _request(stranger, method, url)
            expect(f"{where} as another team's owner should be 404", response, response.status_code == 404)
            # Another team's object in our team's URL, one parameter at a time, as our owner (every right).
            for param in route.params:
                if param == "team_slug":
                    continue
                foreign = northwind.url(route, **{param: harbor.params[param]})
                response = _request(by_role[Role.OWNER], method, foreign)
                what = f"{method} {foreign} ({route.name}) with Blue Harbor's {param} should be 404"
                expect(what, response, response.status_code == 404)
        for method in {"GET", "POST"} - set(methods):
            response = _request(by_role[Role.OWNER], method, url)
            what = f"{method} {url} ({route.name}) is not in TEAM_URLS so should be 405"
            expect(what, response, response.status_code == 405)
    assert not problems, f"{len(problems)} answers differ from the matrix:\n" + "\n".join(problems)


def test_every_site_url_answers_as_its_entry_says(worlds, member):
    viewer = member(Role.VIEWER).user
    problems: list[str] = []
    for route in routes():
        if route.is_team_scoped or route.name.startswith("admin:") or route.name not in SITE_URLS:
            continue
        who, methods = SITE_URLS[route.name]
        url = reverse(route.name, kwargs={p: SITE_PARAMS[p] for p in route.params})
        for method in methods:
            for user, label in ((None, "anonymous"), (viewer, "signed in")):
                # A fresh client each time: signing out must not sign out the rest of the walk.
                response = _request(_client(user), method, url)
                if who == "signed-in" and label == "anonymous":
                    ok = _is_login_redirect(response)
                elif who == "api" and label == "anonymous":
                    ok = response.status_code == 401 and "error" in response.json()
                else:  # a page, or a clear refusal of the empty query (estimate) or a down broker (healthz)
                    ok = response.status_code < 400 or (route.name, response.status_code) in {
                        ("api-estimate", 400),
                        ("healthz", 503),
                    }
                if not ok or response.status_code >= 500:
                    got = _explain(response)
                    problems.append(f"{method} {url} ({route.name}, {who}) as {label}: got {got}")
    assert not problems, "\n".join(problems)


def _admin_url(route: Route, objects: dict[str, object]) -> str | None:
    if route.name == "admin:app_list":
        return reverse(route.name, kwargs={"app_label": "ledger"})
    if "url" in route.params:  # the catch-all
        return "/admin/no-such-page/"
    if route.name == "admin:view_on_site":
        return None  # needs a model with get_absolute_url; none is registered
    path = "/" + route.pattern
    match = re.match(r"/admin/(\w+)/(\w+)/", path)
    if route.params:
        if match is None:
            return None
        obj = objects.get(f"{match[1]}.{match[2]}")
        if obj is None:
            return None  # no row of that model in the world: nothing to show
        path = re.sub(r"<(?:\w+:)?\w+>", str(obj.pk), path)
    return path


def test_the_admin_is_for_staff_only_and_none_of_its_pages_fails(worlds, member):
    objects = {}
    for model in admin.site._registry:
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        objects[label] = apps.get_model(label).objects.order_by("pk").first()
    staff = User.objects.create_superuser(email="root@keter.test", password="x")
    people = {"anonymous": None, "a team owner without staff": member(Role.OWNER).user, "staff": staff}
    clients = {label: _client(user) for label, user in people.items()}
    admin_login = reverse("admin:login")
    problems: list[str] = []
    pages_shown_to_staff = 0
    for route in routes():
        if not route.name.startswith("admin:"):
            continue
        url = _admin_url(route, objects)
        if url is None:
            continue
        for method in ADMIN_PUBLIC.get(route.name, GET):
            for label, user in people.items():
                # Signing out gets a client of its own, so the rest of the walk stays signed in.
                client = _client(user) if route.name == "admin:logout" else clients[label]
                response = _request(client, method, url)
                if label == "staff":
                    ok = True
                    pages_shown_to_staff += response.status_code == 200
                elif route.name in ADMIN_PUBLIC:
                    ok = True
                elif route.name == "admin:<unnamed admin/(?P<url>.*)$>":
                    ok = response.status_code in {302, 404}
                else:
                    ok = _is_login_redirect(response, admin_login)
                if not ok or response.status_code >= 500:
                    problems.append(f"{method} {url} ({route.name}) as {label}: got {_explain(response)}")
    assert not problems, "\n".join(problems)
    assert pages_shown_to_staff > 50  # staff did see the pages, not the sign-in form


@pytest.mark.parametrize("path", ["js/app.js", "css/app.css"])
def test_static_files_need_no_sign_in(db, settings, path):
    # In production whitenoise serves collectstatic's output; here it finds the files where they live.
    settings.WHITENOISE_USE_FINDERS = True
    response = _client().get(f"{settings.STATIC_URL}{path}")
    assert response.status_code == 200 and not response.has_header("Set-Cookie")


def test_a_team_the_user_left_answers_404_everywhere(worlds, member):
    # Membership is checked on every request, not remembered in the session.
    northwind, _ = worlds
    viewer = member(Role.VIEWER)
    client = _client(viewer.user)
    url = reverse("planner:dashboard", args=[northwind.team.slug])
    assert client.get(url).status_code == 200
    Membership.objects.filter(pk=viewer.pk).delete()
    assert client.get(url).status_code == 404
