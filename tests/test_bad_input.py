"""Bad input at every form and htmx endpoint (issue #9): never a 500, always a message, nothing written on a
refusal, and script payloads come back escaped.

The endpoints come from the URL walk (`tests/urlwalk.py`): every team route that answers POST gets
Hypothesis-generated values (empty, huge, negative, non-numeric, unicode, HTML and script payloads, very
long strings) in the fields its form reads, posted as the least-privileged role the matrix allows; every
page with filters gets them in its query string. FIELDS below names those fields; a new POST route without
a line there fails `test_every_form_endpoint_has_its_fields_listed`.
"""

import os
import re
import uuid

import pytest
from django.apps import apps
from django.contrib.messages import constants as message_levels
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from keter.accounts.roles import Role, can
from ledger.models import Account
from tests.test_url_matrix import TEAM_URLS
from tests.urlwalk import build_team_world, routes

SCRIPT = '<script>alert("keter")</script>'
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = [SCRIPT, IMG]
EDGES = [
    "", " ", "0", "-1", "-0", "1.5", "1e9", "NaN", "inf", "9" * 40, "-" + "9" * 40, "abc", "١٢٣", "½",
    "\x00", "a\x00b", "\u202e", "🎬" * 40, "null", "[]", "{'a': 1}", "'; DROP TABLE ledger_entry; --",
    "=1+2", "../../etc/passwd", "2026-02-30", "99999-12-31", "x" * 10_000, "\n" * 50, "javascript:alert(1)",
]  # fmt: skip
# Tried on every field of every endpoint, whatever Hypothesis draws.
WORST = ["a\x00b", SCRIPT, "-" + "9" * 40, "é" * 300]
junk = st.one_of(
    st.sampled_from(PAYLOADS + EDGES),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.text(max_size=120),
)


def _or_junk(*good: str):
    """Half the time a value the form accepts, so validation further in is reached too."""
    return st.one_of(st.sampled_from(good), junk)


HINTS = {
    "request_token": st.one_of(st.uuids().map(str), junk),
    "credits": _or_junk("1000", "2,500", "-5", "10000000"),
    "role": _or_junk(*Role.values),
    "basis": _or_junk("planned", "expected", "custom"),
    "model": _or_junk("sora-2", "veo-3"),
    "quality": _or_junk("720p", "1080p"),
    "seconds": _or_junk("4", "8", "600"),
    "audio": _or_junk("", "on", "off"),
    "verdict": _or_junk("keeper", "rejected", "pending"),
    "direction": _or_junk("up", "down"),
    "status": _or_junk("planned", "ready"),
    "email": _or_junk("new@example.com", "viewer@demo.keter"),
    "expires_on": _or_junk("2099-01-01", "2000-01-01"),
    "due_date": _or_junk("2099-01-01"),
    "next": _or_junk("/t/northwind/queue/", "//evil.example/", "https://evil.example/"),
    "takes": _or_junk("1", "2", "100000"),
    "name": _or_junk("Spring launch"),
    "motion": _or_junk("", "normal", "fast"),
    "upscale": _or_junk("", "none", "4k"),
    "success_rate": _or_junk("0.5", "1", "0"),
    "confidence": _or_junk("0.9", "0.99", "1"),
}

PROJECT_FIELDS = ["name", "goal", "usage", "responsible", "due_date", "contingency_percent", "links", "notes"]
# route name -> the fields its form (or view) reads. An empty list still gets posted (with stray fields).
FIELDS: dict[str, list[str]] = {
    "accounts:team-alerts": ["low_balance_threshold"],
    "accounts:member-add": ["email", "name", "role"],
    "accounts:member-role": ["role"],
    "accounts:member-remove": [],
    "ledger:top-up": ["request_token", "credits", "reference"],
    "ledger:grant": ["request_token", "credits", "expires_on", "memo"],
    "ledger:adjust": ["request_token", "credits", "reason"],
    "planner:project-new": PROJECT_FIELDS,
    "planner:project-edit": PROJECT_FIELDS,
    "planner:scene-add": [],
    "planner:scenes-reorder": ["scene"],
    "planner:scenes-import": ["file"],
    "planner:whatif": ["all", "model", "quality", "seconds", "whatif_scene"],
    "planner:whatif-apply": ["all", "model", "quality", "seconds", "whatif_scene"],
    "planner:project-submit": ["reason"],
    "planner:project-cancel": ["comment"],
    "planner:project-deliver": [],
    "planner:plan-launch": [],
    "planner:job-cancel": ["next"],
    "planner:approval-approve": ["basis", "credits", "comment"],
    "planner:approval-reject": ["comment"],
    "planner:approval-send-back": ["comment"],
    "planner:approval-withdraw": [],
    "planner:notifications-read": [],
    "planner:scene-update": [
        "title",
        "prompt",
        "seconds",
        "model",
        "quality",
        "audio",
        "fast_motion",
        "hdr",
        "upscale_4k",
        "sound_effects",
        "image_refs",
        "video_refs",
        "reference_links",
        "variants",
        "planned_takes_override",
        "notes",
        "status",
    ],  # fmt: skip
    "planner:scene-duplicate": [],
    "planner:scene-delete": [],
    "planner:scene-restore": [],
    "planner:scene-move": ["direction"],
    "planner:scene-launch": ["takes", "next"],
    "planner:take-judge": ["verdict"],
    # Pages whose filters live in the query string (GET).
    "ledger:credits": ["kind", "q", "date_from", "date_to", "page"],
    "ledger:balance-report": ["date_from", "date_to"],
    "ledger:register-csv": ["kind", "q", "date_from", "date_to"],
    "ledger:register-xlsx": ["kind", "q", "date_from", "date_to"],
    "ledger:journal": ["until"],
    "planner:catalog": ["vendor", "quality"],
    "planner:projects": ["status"],
    "planner:queue": ["project"],
    "planner:reports": ["project", "model", "member", "quality", "date_from", "date_to", "by"],
    "planner:usage-csv": ["project", "model", "member", "quality", "date_from", "date_to", "by"],
    "planner:usage-xlsx": ["project", "model", "member", "quality", "date_from", "date_to", "by"],
    "planner:costs-csv": ["project", "date_from", "date_to"],
}

# The least-privileged role first: the fuzz posts as the first role the matrix allows.
ROLE_ORDER = [Role.VIEWER, Role.FINANCE, Role.PRODUCER, Role.LEAD, Role.OWNER]
# The approval endpoints decide the budget still waiting, not the one already approved.
USES_PENDING_VERSION = {
    "planner:approval-approve",
    "planner:approval-reject",
    "planner:approval-send-back",
    "planner:approval-withdraw",
}
WATCHED_APPS = ("accounts", "ledger", "planner")
# A few examples per endpoint keep the suite fast and repeatable; KETER_FUZZ_EXAMPLES=200 explores further,
# with new random examples each run.
EXPLORE = "KETER_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("KETER_FUZZ_EXAMPLES", "8"))


def _fuzzed_routes(method: str):
    return [
        r for r in routes() if r.name in TEAM_URLS and method in TEAM_URLS[r.name][1] and r.name in FIELDS
    ]


def test_every_form_endpoint_has_its_fields_listed():
    missing = [
        f"{name}: add '{name}': [the fields its form reads] to FIELDS in {__file__}"
        for name, (_, methods) in TEAM_URLS.items()
        if "POST" in methods and name not in FIELDS
    ]
    assert not missing, "\n".join(missing)


def _fingerprint() -> tuple:
    """Row counts of every model of ours and each ledger account's balance: what a refusal must not move."""
    models = [m for m in apps.get_models() if m._meta.app_label in WATCHED_APPS]
    # One round trip: this runs twice per example.
    counts = ", ".join(f'(SELECT count(*) FROM "{m._meta.db_table}")' for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row = cursor.fetchone()
    labels = [m._meta.label for m in models]
    return tuple(zip(labels, row, strict=True)), tuple(Account.objects.order_by("id").values_list("balance"))


def _changes(before: tuple, after: tuple) -> str:
    counts = [f"{a[0]}: {a[1]} → {b[1]}" for a, b in zip(before[0], after[0], strict=True) if a != b]
    balances = ["ledger balances"] if before[1] != after[1] else []
    return ", ".join(counts + balances)


def _error_messages(response) -> list[str]:
    storage = getattr(response.wsgi_request, "_messages", None)
    queued = getattr(storage, "_queued_messages", [])
    return [str(m) for m in queued if m.level >= message_levels.WARNING]


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


@pytest.fixture
def world(demo, other_team, member, catalog):
    return build_team_world(demo, producer=member(Role.PRODUCER), approver=member(Role.LEAD), tag="nw")


def _client_for(action: str, world) -> Client:
    role = next(r for r in ROLE_ORDER if can(r, action))
    client = Client(raise_request_exception=False)
    client.force_login(world.members[role].user)
    return client


def _strategy(fields: list[str]):
    values = {field: HINTS.get(field, junk) for field in fields}
    # Any subset of the fields (a missing field is bad input too), plus a stray one now and then.
    return st.fixed_dictionaries({}, optional=values | {"unexpected": junk})


def _attempt(client: Client, method: str, url: str, route_name: str, data: dict, htmx: bool) -> str | None:
    """One request with bad input, rolled back afterwards; what went wrong, or None."""
    headers = {"HX-Request": "true"} if htmx else {}
    posted = " ".join(str(v) for v in data.values())
    if "file" in data:
        data = data | {"file": SimpleUploadedFile("scenes.csv", str(data["file"]).encode("utf-8", "replace"))}
    with transaction.atomic():
        before = _fingerprint()
        send = client.post if method == "POST" else client.get
        response = send(url, data, headers=headers)
        body = _body(response)
        after = _fingerprint()
        transaction.set_rollback(True)
    where = f"{method} {url} ({route_name}) with {data!r}"
    if response.status_code >= 500:
        error = response.exc_info[1] if getattr(response, "exc_info", None) else body[:200]
        return f"{where}: {response.status_code} {error!r}"
    refused = response.status_code >= 400 or _error_messages(response)
    if refused and before != after:
        return f"{where}: refused ({response.status_code}) yet wrote {_changes(before, after)}"
    if refused and not (_error_messages(response) or body.strip()):
        return f"{where}: refused ({response.status_code}) without saying why"
    if response.get("Content-Type", "").startswith("text/html"):
        for payload in PAYLOADS:
            if payload in posted and payload in body:
                return f"{where}: the payload came back unescaped"
    return None


def _fuzz(route, world, method: str) -> list[str]:
    """Every field at once with each of the worst values, then Hypothesis; the problems found."""
    action, _ = TEAM_URLS[route.name]
    client = _client_for(action, world)
    overrides = {"version_id": world.pending_version.id} if route.name in USES_PENDING_VERSION else {}
    url = world.url(route, **overrides)
    fields = FIELDS[route.name] or ["unexpected"]
    problems = [
        problem
        for value in WORST
        if (problem := _attempt(client, method, url, route.name, dict.fromkeys(fields, value), False))
    ]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not EXPLORE)
    @given(data=_strategy(FIELDS[route.name]), htmx=st.booleans())
    def run(data, htmx):
        problem = _attempt(client, method, url, route.name, data, htmx)
        assert problem is None, problem

    try:
        run()
    except AssertionError as failure:
        problems.append(str(failure).splitlines()[0])
    return problems


def test_no_form_endpoint_answers_bad_input_with_a_500_a_silent_refusal_or_a_write(world):
    problems = [p for route in _fuzzed_routes("POST") for p in _fuzz(route, world, "POST")]
    assert not problems, "\n".join(problems)


def test_no_page_filter_answers_bad_input_with_a_500_or_an_unescaped_payload(world):
    problems = [p for route in _fuzzed_routes("GET") for p in _fuzz(route, world, "GET")]
    assert not problems, "\n".join(problems)


# The forms outside the teams, and the estimate API: route name -> (fields, who sends them, method).
SITE_FORMS = {
    "login": (["username", "password"], None, "POST"),
    "password_reset": (["email"], None, "POST"),
    "password_change": (["old_password", "new_password1", "new_password2"], Role.VIEWER, "POST"),
    "logout": ([], Role.VIEWER, "POST"),
    "api-estimate": (
        [
            "model",
            "seconds",
            "quality",
            "audio",
            "motion",
            "hdr",
            "upscale",
            "sound_effects",
            "off_peak",
            "image_refs",
            "video_refs",
            "variants",
            "success_rate",
            "confidence",
        ],
        Role.VIEWER,
        "GET",
    ),  # fmt: skip
}


def _fuzz_site_form(name: str, world) -> list[str]:
    fields, role, method = SITE_FORMS[name]
    url = reverse(name)

    def client() -> Client:
        fresh = Client(
            raise_request_exception=False
        )  # a fresh one each time: signing out must not carry over
        if role is not None:
            fresh.force_login(world.members[role].user)
        return fresh

    worst = [dict.fromkeys(fields or ["unexpected"], value) for value in WORST]
    problems = [p for data in worst if (p := _attempt(client(), method, url, name, data, False))]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not EXPLORE)
    @given(data=_strategy(fields))
    def run(data):
        problem = _attempt(client(), method, url, name, data, False)
        assert problem is None, problem

    try:
        run()
    except AssertionError as failure:
        problems.append(str(failure).splitlines()[0])
    return problems


def test_the_sign_in_and_password_forms_and_the_estimate_api_answer_bad_input_without_a_500(world):
    problems = [problem for name in SITE_FORMS for problem in _fuzz_site_form(name, world)]
    assert not problems, "\n".join(problems)


def test_a_very_long_email_at_sign_in_is_a_wrong_login_not_a_500(client, demo):
    # Was a 500: django-axes could not store the attempt's username (255 characters at most).
    response = client.post(reverse("login"), {"username": "x" * 5000 + "@demo.keter", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct" in response.content.decode()


# --- what people typed, shown back: escaped in every page ----------------------------------------------


def test_script_payloads_render_escaped_in_every_page_that_shows_them(world, member):
    """Store the payload everywhere a person can type text, then read every team page as the owner."""
    from ledger.services import ledger_adjust, ledger_grant, ledger_top_up
    from planner.pricing import pricing_context
    from planner.services.approvals import budget_reject
    from planner.services.projects import project_create
    from planner.services.scenes import scene_add, scene_update

    team, owner, producer = world.team, member(Role.OWNER), member(Role.PRODUCER)
    ctx = pricing_context(team)
    project = project_create(by=producer, name=SCRIPT, goal=IMG, usage=SCRIPT, notes=SCRIPT)
    scene = scene_add(project=project, ctx=ctx).scene
    text = {"title": SCRIPT, "prompt": IMG, "notes": SCRIPT, "reference_links": SCRIPT}
    scene_update(scene=scene, data=text | {"model": "sora-2", "seconds": "8"}, ctx=ctx)
    # A value the form refuses is kept to show back in the row: it must come back escaped too.
    scene_update(scene=world.scene, data={"seconds": SCRIPT, "title": IMG}, ctx=ctx)
    budget_reject(version=world.pending_version, by=owner, comment=SCRIPT)
    ledger_top_up(team=team, credits=1000, key="test:xss:top-up", reference=SCRIPT, actor=owner.user)
    ledger_grant(team=team, credits=5, key="test:xss:grant", memo=SCRIPT, actor=owner.user)
    ledger_adjust(team=team, credits=1, key="test:xss:adjust", reason=IMG, actor=owner.user)
    owner.user.name = SCRIPT
    owner.user.save(update_fields=["name"])

    client = Client(raise_request_exception=False)
    client.force_login(owner.user)
    pages = [r for r in routes() if r.name in TEAM_URLS and "GET" in TEAM_URLS[r.name][1]]
    shown, problems = 0, []
    for route in pages:
        for overrides in ({}, {"project_id": project.id, "scene_id": scene.id}):
            url = world.url(route, **{k: v for k, v in overrides.items() if k in route.params})
            response = client.get(url, {"q": SCRIPT})
            if not response.get("Content-Type", "").startswith("text/html"):
                continue
            body = _body(response)
            if response.status_code >= 500:
                problems.append(f"{url}: {response.status_code}")
            for payload in PAYLOADS:
                if payload in body:
                    problems.append(f"{url} ({route.name}) shows {payload!r} unescaped")
            shown += "&lt;script&gt;" in body
    assert not problems, "\n".join(problems)
    assert shown >= 5  # the payload did reach the pages, escaped


def test_a_refused_top_up_writes_nothing_and_says_why(world, member):
    # The spec, spelled out once for a money form: refusal → 422 with a message, no ledger row.
    client = Client()
    client.force_login(member(Role.FINANCE).user)
    before = _fingerprint()
    response = client.post(
        reverse("ledger:top-up", args=[world.team.slug]),
        {"request_token": str(uuid.uuid4()), "credits": "-5", "reference": SCRIPT},
    )
    assert response.status_code == 422
    assert "Enter credits above zero" in response.content.decode()
    assert SCRIPT not in response.content.decode()
    assert _fingerprint() == before


# --- regressions the fuzzing found ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "model", "audio"])
def test_a_nul_character_in_a_scene_field_is_refused_with_a_message(world, member, field):
    # Was a 500: the refused text (or the message quoting it) was kept in a JSON column PostgreSQL cannot
    # store NUL in, and a posted model name went into a query as it was.
    client = Client()
    client.force_login(member(Role.PRODUCER).user)
    url = reverse("planner:scene-update", args=[world.team.slug, world.project.id, world.scene.id])
    response = client.post(url, {field: "a\x00b"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    message = re.search(
        rf'id="scene-{world.scene.id}-err-{field}"[^>]*>([^<]*)</p>', response.content.decode()
    )
    assert message and message[1].strip()  # the field says why
    world.scene.refresh_from_db()
    assert world.scene.title == "Scene 1" and world.scene.video_model.slug == "sora-2"


def test_an_empty_option_box_reads_as_off(world, ctx):
    # Was a 500: an empty value reached the model's boolean field as "".
    from planner.services.scenes import scene_update

    change = scene_update(scene=world.scene, data={"fast_motion": ""}, ctx=ctx)
    change.scene.refresh_from_db()
    assert change.errors == {} and change.scene.fast_motion is False
