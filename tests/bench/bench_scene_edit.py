"""The scene-edit request (what each keystroke in the editor costs) on a 300-scene project, on PostgreSQL.

Both figures go through the whole Django stack with the test Client (middleware, session, auth): the
scene edit is an htmx POST of a new length to `planner:scene-update`, alternating between two valid
values so every request really saves and re-prices; the reference is the login-required `home` view
(`/`), which only reads the user's memberships and redirects to their team.
"""

import benchkit

SCENES = 300
PROJECT_NAME = "Bench: 300 scenes"
LENGTHS = ("5", "10")  # both offered by the model below, so the edit always succeeds


def bench_project():
    """Northwind's 300-scene project, created once and reset to the same state on every run."""
    from django.db import connection

    from keter.accounts.demo import seed_accounts
    from keter.accounts.models import Membership
    from keter.accounts.roles import Role
    from planner.catalog import load_catalog
    from planner.models import Scene
    from planner.pricing import price_scene, pricing_context
    from planner.services.projects import project_create

    team = seed_accounts()[0]
    load_catalog()
    producer = Membership.objects.select_related("user", "team").get(
        team=team, role=Role.PRODUCER, user__email="producer@demo.keter"
    )
    project = team.projects.filter(name=PROJECT_NAME).first()
    if project is None:
        project = project_create(by=producer, name=PROJECT_NAME)
    ctx = pricing_context(team)
    model = ctx.catalog.get("runway-gen4-turbo").model
    project.scenes.all().delete()
    scenes = []
    for position in range(SCENES):
        scene = Scene(
            project=project,
            position=position,
            title=f"Shot {position + 1}",
            video_model=model,
            quality="720p",
            seconds=5,
            image_refs=1,
            variants=1 + position % 3,
        )
        scenes.append(price_scene(scene, ctx))
    Scene.objects.bulk_create(scenes)
    # The reset leaves the previous run's 300 rows dead in the table and its index, and the servers this
    # runs on may have autovacuum off: each run would then scan more dead rows than the last.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Scene._meta.db_table}")
    return producer, project


def main() -> None:
    benchkit.setup_django()
    from django.test import Client
    from django.urls import reverse

    producer, project = bench_project()
    scene = project.scenes.get(position=SCENES // 2)
    client = Client(HTTP_HOST="localhost")  # allowed by the default settings, unlike "testserver"
    client.force_login(producer.user)
    edit_url = reverse("planner:scene-update", args=[producer.team.slug, project.id, scene.id])
    edits = iter(LENGTHS * 10_000)

    def scene_edit():
        response = client.post(edit_url, {"seconds": next(edits)}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200, response.content[:500]

    def trivial_view():
        response = client.get(reverse("home"))
        assert response.status_code == 302, response.status_code

    edit_ms, trivial_ms = benchkit.interleaved_median_ms(scene_edit, trivial_view, repeat=100)
    benchkit.report("scene-edit", edit_ms, "ms", "trivial-view", trivial_ms, "ms", edit_ms / trivial_ms)


if __name__ == "__main__":
    main()
