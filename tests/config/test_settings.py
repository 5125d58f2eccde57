"""Production settings: refuse to start without a real secret key; `check --deploy` is clean."""

from __future__ import annotations

import json
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


def _settings_of(module: str, names: list[str], **env: str) -> dict[str, object]:
    """The values of `names` under settings `module` with `env`, read in a fresh process."""
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}, default=str))"
    )
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    }
    environ.update({"DJANGO_SETTINGS_MODULE": module, "SECRET_KEY": secrets.token_urlsafe(64), **env})
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_settings_pass_check_deploy_with_a_postgresql_url_too() -> None:
    # given production settings as deployed: a secret key and a PostgreSQL URL (not connected to)
    done = _check_deploy(
        SECRET_KEY=secrets.token_urlsafe(64), DATABASE_URL="postgres://baton@127.0.0.1:5432/baton_sec"
    )
    # then the deployment checklist reports no issues at all
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_production_hardening_is_on_by_default() -> None:
    # given production settings with nothing but the secret key set
    found = _settings_of(
        "config.settings.production",
        [
            "SECURE_HSTS_SECONDS",
            "SESSION_COOKIE_SECURE",
            "SESSION_COOKIE_NAME",
            "CSRF_COOKIE_NAME",
            "SESSION_IDLE_TIMEOUT",
            "SESSION_ABSOLUTE_TIMEOUT",
            "SESSION_COOKIE_AGE",
            "AXES_FAILURE_LIMIT",
            "LOGIN_FAILURE_LIMIT_PER_ADDRESS",
            "TRUSTED_PROXY_COUNT",
            "CONTENT_SECURITY_POLICY",
        ],
    )
    # then HSTS, secure __Host- cookies, the session limits and the lockout are on
    assert found["SECURE_HSTS_SECONDS"] == 31536000
    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert found["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert (found["SESSION_IDLE_TIMEOUT"], found["SESSION_ABSOLUTE_TIMEOUT"]) == (30 * 60, 12 * 3600)
    assert found["SESSION_COOKIE_AGE"] == 12 * 3600
    assert (found["AXES_FAILURE_LIMIT"], found["LOGIN_FAILURE_LIMIT_PER_ADDRESS"]) == (5, 20)
    assert found["TRUSTED_PROXY_COUNT"] == 0
    # and the CSP allows nothing inline, no eval, nothing remote
    policy = json.dumps(found["CONTENT_SECURITY_POLICY"])
    for word in ("unsafe-inline", "unsafe-eval", "http:", "https:", "*"):
        assert word not in policy


def test_the_limits_come_from_the_environment() -> None:
    # given the environment variables an operator sets
    found = _settings_of(
        "config.settings.production",
        [
            "SESSION_IDLE_TIMEOUT",
            "SESSION_ABSOLUTE_TIMEOUT",
            "SESSION_COOKIE_AGE",
            "AXES_FAILURE_LIMIT",
            "LOGIN_FAILURE_LIMIT_PER_ADDRESS",
            "AXES_COOLOFF_TIME",
            "TRUSTED_PROXY_COUNT",
        ],
        SESSION_IDLE_MINUTES="10",
        SESSION_MAX_HOURS="8",
        LOGIN_FAILURE_LIMIT="3",
        LOGIN_FAILURE_LIMIT_PER_ADDRESS="50",
        LOGIN_LOCKOUT_MINUTES="0",
        TRUSTED_PROXY_COUNT="1",
    )
    # then the settings follow them (a lockout of 0 minutes: until an administrator unlocks)
    assert found == {
        "SESSION_IDLE_TIMEOUT": 600,
        "SESSION_ABSOLUTE_TIMEOUT": 8 * 3600,
        "SESSION_COOKIE_AGE": 8 * 3600,
        "AXES_FAILURE_LIMIT": 3,
        "LOGIN_FAILURE_LIMIT_PER_ADDRESS": 50,
        "AXES_COOLOFF_TIME": None,
        "TRUSTED_PROXY_COUNT": 1,
    }


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
