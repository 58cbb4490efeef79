import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command

from planner.catalog_data import MODELS

# The reference's published price for one take, per model: (options, billed seconds, credits).
PUBLISHED = [
    ("runway-gen4-turbo", "--seconds 10", 10, 50),
    ("runway-gen4", "--seconds 5", 5, 60),
    ("runway-gen45", "--seconds 10", 10, 120),
    ("runway-gen3-alpha", "--seconds 10", 10, 100),
    ("runway-gen3-alpha-turbo", "--seconds 5", 5, 25),
    ("runway-aleph", "--seconds 5", 5, 75),
    ("runway-act-one", "--seconds 3", 3, 50),
    ("runway-act-one-turbo", "--seconds 4", 4, 25),
    ("veo-3-1", "--seconds 8 --quality 4K", 8, 480),
    ("veo-3-1", "--seconds 8 --quality 1080p --no-audio", 8, 160),
    ("veo-3-1-fast", "--seconds 8 --quality 1080p", 8, 96),
    ("kling-2-6", "--seconds 5 --audio", 5, 70),
    ("kling-2-6", "--seconds 10", 10, 70),
    ("wan-2-6", "--seconds 5 --quality 1080p", 5, 75),
    ("sora-2", "--seconds 12", 12, 120),
    ("sora-2-pro", "--seconds 4 --quality 1024p", 4, 200),
    ("luma-ray2", "--seconds 7 --quality 1080p", 10, 340),
    ("luma-ray2", "--seconds 5 --upscale 4k", 5, 180),
    ("luma-ray2-flash", "--seconds 10 --quality 1080p", 10, 130),
    ("luma-ray3", "--seconds 5 --quality 540p --hdr", 5, 640),
    ("luma-ray3", "--seconds 20", 20, 240),
    ("pixverse-v5", "--seconds 8 --quality 720p --motion fast --sound-effects", 8, 260),
    ("pixverse-v4-5", "--seconds 5 --quality 1080p", 5, 120),
    ("kling-2-5-turbo-pro", "--seconds 10", 10, 70),
    ("hailuo-02", "--seconds 6 --quality 1080p", 6, 49),
    ("hailuo-02", "--seconds 10 --quality 768p", 10, 56),
]


def run_estimate(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("estimate", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_every_reference_model_has_a_published_price_case():
    assert {slug for slug, *_ in PUBLISHED} == {m["slug"] for m in MODELS}


@pytest.mark.parametrize("slug, options, billed, credits", PUBLISHED)
def test_it_gives_the_published_price_of_every_model(catalog, slug, options, billed, credits):
    code, out, _ = run_estimate("--model", slug, *options.split(), "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["billed_seconds"], result["credits_per_take"]) == (billed, credits)


def test_it_prints_exactly_one_json_object_with_the_documented_keys(catalog):
    code, out, _ = run_estimate(
        "--model", "runway-gen4-turbo", "--seconds", "10", "--variants", "2", "--json"
    )
    result = json.loads(out)
    assert list(result) == [
        "model",
        "billed_seconds",
        "credits_per_take",
        "expected_takes",
        "planned_takes",
        "expected_credits",
        "planned_credits",
    ]
    assert result["model"] == "runway-gen4-turbo"
    # 2 keepers at the catalog's 35%: 2 / 0.35 = 5.71 expected takes; 50 credits each.
    assert result["expected_takes"] == pytest.approx(5.7143, abs=1e-4)
    assert result["expected_credits"] == 286
    assert result["planned_credits"] == 50 * result["planned_takes"]
    assert all(
        isinstance(result[k], int) for k in ("credits_per_take", "expected_credits", "planned_credits")
    )


def test_it_takes_the_success_rate_and_confidence_it_is_given(catalog):
    _, out, _ = run_estimate(
        "--model", "sora-2", "--seconds", "4", "--success-rate", "0.5", "--confidence", "0.75", "--json"
    )
    result = json.loads(out)
    # One keeper at 50%: two takes give 75% odds of at least one success.
    assert (result["expected_takes"], result["planned_takes"], result["planned_credits"]) == (2.0, 2, 80)


def test_it_prints_a_readable_summary_without_json(catalog):
    code, out, _ = run_estimate("--model", "luma-ray2", "--seconds", "7")
    assert code == 0
    assert "billed length     10 s" in out and "credits per take  320" in out and "planned takes" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--model", "runway-gen4-turbo", "--seconds", "7"],
            "Runway Gen-4 Turbo makes 5 s or 10 s clips, not 7 s",
        ),
        (["--model", "runway-gen4-turbo", "--seconds", "5", "--quality", "1080p"], "1080p is not offered by"),
        (
            ["--model", "runway-gen4", "--seconds", "5", "--image-refs", "0"],
            "this model needs an image reference",
        ),
        (["--model", "luma-ray2", "--seconds", "12"], "Luma Ray2 makes clips up to 10 s, not 12 s"),
        (["--model", "nope", "--seconds", "5"], "no model called 'nope'"),
        (["--model", "sora-2", "--seconds", "four"], "seconds must be a whole number"),
        (["--model", "sora-2", "--seconds", "-4"], "seconds must be between 1 and"),
        (["--model", "sora-2", "--seconds", "4", "--variants", "0"], "at least 1 variant"),
        (["--model", "sora-2", "--seconds", "4", "--success-rate", "1.5"], "success rate must be above 0"),
        (
            ["--model", "sora-2", "--seconds", "4", "--confidence", "1"],
            "confidence level must be above 0 and below 1",
        ),
        (["--model", "sora-2", "--seconds", "4", "--motion", "slow"], "motion must be"),
    ],
)
def test_it_refuses_bad_input_with_exit_status_1_and_one_line(catalog, args, message):
    code, out, err = run_estimate(*args, "--json")
    assert code == 1
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_the_real_command_line_exits_1_with_the_message_on_stderr(catalog, tmp_path, settings):
    # call_command stands in for the process above; once, check the real process end to end on SQLite.
    db = tmp_path / "cli.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{db}", "PATH": "/usr/bin:/bin"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    subprocess.run([*manage, "load_catalog"], env=env, check=True, capture_output=True)
    ok = subprocess.run(
        [*manage, "estimate", "--model", "sora-2", "--seconds", "8", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["credits_per_take"] == 80
    bad = subprocess.run(
        [*manage, "estimate", "--model", "sora-2", "--seconds", "9"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "estimate: OpenAI Sora 2 makes 4 s, 8 s or 12 s clips, not 9 s"
