import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection

from keter.accounts.demo import seed_accounts
from keter.accounts.models import Membership, Team, User
from keter.accounts.plans import load_plans
from keter.accounts.roles import Role

# Playwright's sync API keeps an event loop in the test thread; the ORM calls our tests make there are sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("KETER_CHROMIUM", "/usr/bin/chromium")
REQUIRE_SERVICES = os.environ.get("KETER_REQUIRE_SERVICES") == "1"


def _redis_reachable() -> bool:
    url = urlparse(settings.CELERY_BROKER_URL)
    if url.scheme not in {"redis", "rediss"}:
        return False
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def _missing_service(marker: str) -> str | None:
    """Why a test with this marker cannot run here, or None when the service is there."""
    if marker == "postgres" and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if marker == "redis" and not _redis_reachable():
        return "needs Redis: set CELERY_BROKER_URL=redis://... to a running server"
    if marker == "browser" and not shutil.which(CHROMIUM):
        return f"needs Chromium at {CHROMIUM}: apt-get install chromium"
    return None


def pytest_runtest_setup(item):
    for marker in ("postgres", "redis", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing_service(marker)
        if reason is None:
            continue
        if REQUIRE_SERVICES:
            pytest.fail(f"KETER_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Debian's Chromium, never a downloaded build; flags keep it off the (closed) network.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def plans(db):
    return {plan.slug: plan for plan in load_plans()}


@pytest.fixture
def demo(db):
    """The demo teams with one user per role; returns Northwind Studio."""
    return seed_accounts()[0]


@pytest.fixture
def other_team(demo):
    return Team.objects.get(slug="blue-harbor")


@pytest.fixture
def member(demo):
    """member(role) -> the Northwind membership of that role."""

    def get(role: str) -> Membership:
        return Membership.objects.select_related("user", "team").get(
            team=demo, role=role, user__email__endswith="@demo.keter"
        )

    return get


@pytest.fixture
def client_as(client, member):
    """client_as(role) -> a test client signed in as the Northwind member with that role."""

    def login(role: str):
        client.force_login(member(role).user)
        return client

    return login


@pytest.fixture
def outsider(other_team) -> User:
    return Membership.objects.get(team=other_team, role=Role.OWNER).user


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher costs ~0.3 s per user on purpose; tests create dozens of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def catalog(db):
    """The seed catalog loaded into the database; returns a Catalog snapshot for today."""
    from planner.catalog import Catalog, load_catalog

    load_catalog()
    return Catalog.load()


@pytest.fixture
def ctx(demo, catalog):
    """A pricing context for Northwind Studio (Pro plan) with today's catalog."""
    from planner.pricing import pricing_context

    return pricing_context(demo)


@pytest.fixture
def project(member, ctx):
    from planner.services.projects import project_create

    return project_create(by=member(Role.PRODUCER), name="Spring campaign", contingency_percent=10)


@pytest.fixture
def make_scene(project, ctx):
    """make_scene(**fields) -> a saved, priced scene at the end of the project."""
    from planner.services.scenes import scene_add, scene_update

    def make(**fields):
        scene = scene_add(project=project, ctx=ctx).scene
        if fields:
            scene = scene_update(scene=scene, data={k: str(v) for k, v in fields.items()}, ctx=ctx).scene
        return scene

    return make
