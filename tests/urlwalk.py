"""The URL walk the hardening tests share: every route of the URL configuration, and a team with one real
object behind every path parameter a route can take.

Imported by tests/test_url_matrix.py and tests/test_bad_input.py (`from tests.urlwalk import ...`).
"""

import re
from dataclasses import dataclass, field

from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from keter.accounts.models import Membership, Team
from keter.accounts.roles import Role


@dataclass(frozen=True)
class Route:
    name: str  # "planner:scene-update"; unnamed routes are named by their pattern
    pattern: str  # "t/<slug:team_slug>/projects/<int:project_id>/..."
    params: tuple[str, ...]
    callback: object

    @property
    def is_team_scoped(self) -> bool:
        return "team_slug" in self.params

    @property
    def action(self) -> str | None:
        """The matrix action the view checks (set by `team_view`), if any."""
        return getattr(self.callback, "team_action", None)


def routes(resolver=None, prefix: str = "", namespace: str = "") -> list[Route]:
    """Every route of the URL configuration, includes and namespaces flattened."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += routes(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            # The full route's parameters: the prefix's (team_slug) as well as the pattern's own.
            params = _params(pattern)
            name = f"{namespace}{entry.name}" if entry.name else f"{namespace}<unnamed {pattern}>"
            found.append(Route(name=name, pattern=pattern, params=params, callback=entry.callback))
    return found


def _params(pattern: str) -> tuple[str, ...]:
    names = re.findall(r"<(?:\w+:)?(\w+)>", pattern)  # path() converters
    names += re.findall(r"\(\?P<(\w+)>", pattern)  # re_path() groups
    return tuple(dict.fromkeys(names))  # a regex may name a group twice (admin app_list)


# The path parameters a team route may take; TeamWorld.params fills each with a real object.
OBJECT_PARAMS = {"team_slug", "project_id", "scene_id", "version_id", "job_id", "membership_id"}


@dataclass
class TeamWorld:
    """A team with one object of every kind a URL can point at; `params` fills a route's path."""

    team: Team
    members: dict[str, Membership]
    project: object
    scene: object
    version: object
    pending_version: object
    job: object
    extra: dict = field(default_factory=dict)

    @property
    def params(self) -> dict[str, object]:
        return {
            "team_slug": self.team.slug,
            "project_id": self.project.id,
            "scene_id": self.scene.id,
            "version_id": self.version.id,
            "job_id": self.job.id,
            # Not an owner: removing or re-roling them is allowed (never the last owner).
            "membership_id": (self.members.get(Role.VIEWER) or self.members[Role.PRODUCER]).id,
        }

    def url(self, route: Route, **overrides) -> str:
        values = self.params | overrides
        return reverse(route.name, kwargs={name: values[name] for name in route.params})


def build_team_world(team: Team, *, producer: Membership, approver: Membership, tag: str) -> TeamWorld:
    """A project with a priced scene, an approved budget, one settled (succeeded) take, and a second
    project whose budget waits for a decision. Everything through the services, as in production."""
    from ledger.services import ledger_top_up
    from planner.pricing import pricing_context
    from planner.services.approvals import budget_approve, budget_submit
    from planner.services.projects import project_create
    from planner.services.queue import queue_dispatch, queue_launch_scene
    from planner.services.renders import job_claim, job_settle
    from planner.services.scenes import scene_add, scene_update

    ctx = pricing_context(team)
    ledger_top_up(team=team, credits=10_000, key=f"test:walk:top-up:{tag}", reference="walk")
    project = project_create(by=producer, name=f"{tag} campaign", contingency_percent=10)
    scene = scene_add(project=project, ctx=ctx).scene
    scene = scene_update(scene=scene, data={"model": "sora-2", "seconds": "8"}, ctx=ctx).scene
    version = budget_submit(project=project, by=producer)
    budget_approve(version=version, by=approver, basis="planned")
    project.refresh_from_db()
    with transaction.atomic():
        job = queue_launch_scene(scene=scene, by=producer, takes=1, ctx=ctx).jobs[0]
    queue_dispatch(team_id=team.id, send=False)
    assert job_claim(job_id=job.pk) is not None
    assert job_settle(job_id=job.pk, state="succeeded", send=False)
    job.refresh_from_db()

    waiting = project_create(by=producer, name=f"{tag} sequel", contingency_percent=0)
    extra_scene = scene_add(project=waiting, ctx=ctx).scene
    scene_update(scene=extra_scene, data={"model": "sora-2", "seconds": "4"}, ctx=ctx)
    pending_version = budget_submit(project=waiting, by=producer)

    members = {m.role: m for m in team.memberships.select_related("user")}
    version.refresh_from_db()
    return TeamWorld(
        team=team,
        members=members,
        project=project,
        scene=scene,
        version=version,
        pending_version=pending_version,
        job=job,
    )
