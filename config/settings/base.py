"""Settings shared by every way Baton runs.

Everything that differs between the embedded default and production comes from
environment variables; the defaults are safe for the embedded mode only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Runtime files of the embedded mode (SQLite, broker folders, mail) live here, outside git.
VAR_DIR = Path(os.environ.get("BATON_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "guardian",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "accounts",
    "workflows",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workflows.tracing.TraceIdMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_env(default_sqlite: Path) -> dict[str, Any]:
    """PostgreSQL when DATABASE_URL is set, otherwise the embedded SQLite file.

    SQLite runs in WAL mode with IMMEDIATE transactions so that a writer takes the
    write lock when its transaction begins, not half-way through (which would turn
    two concurrent transitions into a 'database is locked' error instead of a wait).
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))
        return dict(config)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": default_sqlite,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": database_from_env(VAR_DIR / "baton.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "accounts.backends.RoleModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "approvals:home"
LOGOUT_REDIRECT_URL = "login"

# guardian: we never use the anonymous user for permissions, but guardian creates it.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

SECRET_KEY = os.environ.get("SECRET_KEY", "")

REDIS_URL = os.environ.get("REDIS_URL", "")

# The channel layer. With Redis: channels-redis's pub/sub layer. A group send is one
# PUBLISH that Redis hands to every process subscribed to the group, where the core layer
# keeps a sorted set per group and per channel (about 10 round trips and a Lua script for
# the 3 groups of a transition: 1.25 ms of CPU against 0.05 ms for one pipelined PUBLISH
# of the 3, measured here; see the outbox). Nothing is stored: a process that is
# disconnected misses what was published meanwhile, and the per-user sequence numbers of
# the live events reveal and heal the gap. Redis also cuts off a subscriber that falls
# too far behind (client-output-buffer-limit pubsub), which the same healing covers.
#
# The in-memory layer (embedded mode) drops messages silently once a channel holds
# `capacity` of them; at the default of 100 a burst lost most of them in a measurement
# (DESIGN.md). 2,000 covers a bulk action over a full inbox page for every recipient.
CHANNEL_CAPACITY = int(os.environ.get("CHANNEL_CAPACITY", "2000"))
if REDIS_URL:
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNEL_PREFIX", "baton"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": 60},
        }
    }

# Celery: Redis when REDIS_URL is set (or CELERY_BROKER_URL), else kombu's filesystem
# transport in VAR_DIR so the embedded mode needs no broker server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://localhost//")
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {
        "data_folder_in": str(CELERY_BROKER_FOLDER),
        "data_folder_out": str(CELERY_BROKER_FOLDER),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "store_processed": False,
        # Without this kombu writes its exchange table to ./control in whatever folder the
        # worker was started from.
        "control_folder": str(VAR_DIR / "broker-control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The audit trail's signed checkpoints (workflows.checkpoints), hourly by default.
AUDIT_CHECKPOINT_INTERVAL = float(os.environ.get("AUDIT_CHECKPOINT_INTERVAL", "3600"))
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "outbox-purge": {"task": "workflows.outbox_purge", "schedule": 3600.0},
    "audit-checkpoint": {"task": "workflows.audit_checkpoint", "schedule": AUDIT_CHECKPOINT_INTERVAL},
}
# Publishing happens in the outbox relay, which has its own retry and dead-letter
# states; kombu must fail fast instead of blocking a request while the broker is down.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The outbox relay. In the embedded mode the channel layer lives inside the one ASGI
# process, so the relay must run there (OUTBOX_RELAY_IN_ASGI); in production it runs as
# `manage.py outbox_relay` processes beside the web tier.
OUTBOX_RELAY_IN_ASGI = env_bool("OUTBOX_RELAY_IN_ASGI", not REDIS_URL)
OUTBOX_RELAY_INTERVAL = float(os.environ.get("OUTBOX_RELAY_INTERVAL", "2.0"))
# True only where this process is known to host the in-memory layer's consumers (tests).
OUTBOX_CHANNEL_LAYER_IN_PROCESS = env_bool("OUTBOX_CHANNEL_LAYER_IN_PROCESS", False)
OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OUTBOX_MAX_ATTEMPTS", "8"))
# The after-commit push owns the events it wrote for this long; only then may a relay
# take them (when the writing process died between commit and push).
OUTBOX_PUSH_LEASE = float(os.environ.get("OUTBOX_PUSH_LEASE", "60"))
OUTBOX_KEEP_DELIVERED_DAYS = int(os.environ.get("OUTBOX_KEEP_DELIVERED_DAYS", "7"))

# The Ed25519 key that signs audit checkpoints, kept outside the database: the PEM itself
# (AUDIT_SIGNING_KEY) or a file holding it (AUDIT_SIGNING_KEY_FILE). Without either,
# signing refuses with an error naming both; only the embedded mode generates a key
# (AUDIT_SIGNING_KEY_GENERATE, in var/).
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = os.environ.get("AUDIT_SIGNING_KEY_FILE", "")
AUDIT_SIGNING_KEY_GENERATE = False

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "baton@localhost")
BATON_BASE_URL = os.environ.get("BATON_BASE_URL", "http://127.0.0.1:8000")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
SPECTACULAR_SETTINGS = {"TITLE": "Baton API", "VERSION": "0.1.0"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
