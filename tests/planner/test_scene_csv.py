import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from keter.accounts.roles import Role
from planner.models import Scene
from planner.scene_csv import COLUMNS, ImportRefused, scenes_import
from planner.services.projects import project_create


def export(client, project) -> str:
    response = client.get(reverse("planner:scenes-export", args=[project.team.slug, project.id]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return b"".join(response.streaming_content).decode()


def comparable(scene: Scene) -> tuple:
    fields = [
        "title", "prompt", "seconds", "quality", "audio", "fast_motion", "hdr", "upscale_4k",
        "sound_effects", "image_refs", "video_refs", "reference_links", "variants",
        "planned_takes_override", "notes", "status", "planned_credits", "expected_credits",
    ]  # fmt: skip
    return (scene.video_model.slug, *[getattr(scene, f) for f in fields])


def test_a_csv_round_trip_loses_nothing(client_as, project, make_scene, member, ctx):
    links = "https://example.com/a\nhttps://example.com/b"
    make_scene(model="pixverse-v5", quality="1080p", seconds=8, fast_motion=1, sound_effects=1, variants=2,
               title="Chase, at night", prompt='A "quoted" prompt,\nover two lines', notes="=SUM(A1)",
               reference_links=links, status="in_production")  # fmt: skip
    make_scene(model="veo-3-1", quality="4K", seconds=6, audio="off", planned_takes_override=3, title="-dash")
    make_scene(model="runway-aleph", seconds=5, video_refs=1, title="@mention", prompt="+plus")
    client = client_as(Role.PRODUCER)
    text = export(client, project)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert "'=SUM(A1)" in text and "'-dash" in text  # neutralised against formula injection

    copy = project_create(by=member(Role.PRODUCER), name="Copy")
    upload = SimpleUploadedFile("scenes.csv", text.encode(), content_type="text/csv")
    response = client.post(reverse("planner:scenes-import", args=[copy.team.slug, copy.id]), {"file": upload})
    assert response.status_code == 302
    originals = [comparable(s) for s in project.scenes.order_by("position")]
    copies = [comparable(s) for s in copy.scenes.order_by("position")]
    assert copies == originals
    assert copy.scenes.get(position=0).prompt == 'A "quoted" prompt,\nover two lines'


def test_an_import_with_bad_rows_reports_each_by_line_and_imports_nothing(project, make_scene, ctx):
    make_scene(title="existing")
    text = (
        "title,seconds,model,variants,quality\n"
        "ok,12,sora-2,1,\n"
        "bad length,7,runway-gen4-turbo,1,\n"
        "letters,ten,sora-2,1,\n"
        "no model,5,unicorn-1,1,\n"
        "no keepers,4,sora-2,0,\n"
        "bad quality,4,sora-2,1,8K\n"
    )
    with pytest.raises(ImportRefused) as refused:
        scenes_import(project=project, raw=text.encode(), ctx=ctx)
    lines = {e.line: e.message for e in refused.value.errors}
    assert set(lines) == {3, 4, 5, 6, 7}
    assert "not 7 s" in lines[3] and "whole seconds" in lines[4] and "unicorn-1" in lines[5]
    assert "at least 1 variant" in lines[6] and "8K is not offered" in lines[7]
    assert project.scenes.count() == 1


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"title,model\nx,sora-2\n", "Missing columns: seconds, variants"),
        (b"seconds,model,variants,colour\n4,sora-2,1,red\n", "Unknown column: colour"),
        (b"seconds,model,variants\n", "header but no scenes"),
        ("seconds,model,variants\n4,sora-2,1\n".encode("utf-16"), "not UTF-8"),
        (b"seconds,model,variants\n4,sora-2,1,extra\n", "More cells than columns"),
    ],
)
def test_a_malformed_file_is_refused_with_a_reason(project, ctx, raw, message):
    with pytest.raises(ImportRefused) as refused:
        scenes_import(project=project, raw=raw, ctx=ctx)
    assert any(message in e.message for e in refused.value.errors)
    assert project.scenes.count() == 0


def test_the_import_page_lists_the_problems_and_keeps_the_scene_list(client_as, project):
    upload = SimpleUploadedFile("s.csv", b"seconds,model,variants\n7,runway-gen4-turbo,1\n")
    response = client_as(Role.PRODUCER).post(
        reverse("planner:scenes-import", args=[project.team.slug, project.id]), {"file": upload}
    )
    assert response.status_code == 422
    assert "Line 2: seconds: Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s" in response.content.decode()
    assert "nothing was imported" in response.content.decode()
    assert project.scenes.count() == 0


def test_the_import_page_asks_for_a_file(client_as, project):
    response = client_as(Role.PRODUCER).post(
        reverse("planner:scenes-import", args=[project.team.slug, project.id])
    )
    assert response.status_code == 422 and "This field is required" in response.content.decode()
