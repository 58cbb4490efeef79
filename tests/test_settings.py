import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRODUCTION_ENV = {
    "KETER_DEBUG": "0",
    "KETER_SECRET_KEY": "k3t3r-pr0duction-s3cret-" + "x7Qp9" * 10,
    "KETER_ALLOWED_HOSTS": "planner.example.com",
    "DATABASE_URL": "postgres://keter@db.example.com/keter",
    "CELERY_BROKER_URL": "redis://redis.example.com:6379/0",
}


def run_manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("KETER_", "DJANGO_"))}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_passes_the_deployment_checklist_with_production_variables():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_flags_a_deployment_that_forgets_the_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "KETER_SECRET_KEY"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr
