"""Production settings: refuse to start without a real secret key; `check --deploy` is clean."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def _check_deploy(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", **overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy_without_warnings() -> None:
    # given production settings with a proper secret key
    # when the deployment checklist runs, failing on any warning
    done = _check_deploy(SECRET_KEY=secrets.token_urlsafe(64))
    # then it reports no issues at all
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    # given production settings and no SECRET_KEY
    done = _check_deploy()
    # then Django does not start, and says what to set
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr


def test_production_settings_refuse_a_short_secret_key() -> None:
    done = _check_deploy(SECRET_KEY="too-short")
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr


def test_the_wsgi_entry_point_defaults_to_production_settings() -> None:
    # given no settings module chosen and no secret key (a WSGI server started bare)
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    # when the WSGI application is loaded
    done = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then it is the production settings that refuse to start (never DEBUG with a public key)
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr


def test_the_wsgi_entry_point_serves_production_settings_with_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["SECRET_KEY"] = secrets.token_urlsafe(64)
    done = subprocess.run(
        [sys.executable, "-c", "import config.wsgi; from django.conf import settings; print(settings.DEBUG)"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
