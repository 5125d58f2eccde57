"""Settings shared by every way Baton runs.

Everything that differs between the embedded default and production comes from
environment variables; the defaults are safe for the embedded mode only.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF

from config.settings.env import BASE_DIR, REDIS_URL, VAR_DIR, env_bool, env_list  # noqa: F401

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
    "axes",
    "csp",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "accounts",
    "workflows",
    "approvals",
]

MIDDLEWARE = [
    # The security headers come first so that static files (served by WhiteNoise, which
    # answers without calling what follows it) carry them too.
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the body (the CSRF check does): a too-large post gets a 413.
    "config.limits.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After the messages: it says why a session ended.
    "accounts.sessions.SessionLimitsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workflows.tracing.TraceIdMiddleware",
    # Last, as django-axes asks: it turns a login refused for a lockout into its answer.
    "axes.middleware.AxesMiddleware",
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
                "approvals.context_processors.workspace",
            ],
        },
    },
]


def postgresql_options() -> dict[str, Any]:
    """psycopg's server-side parameter binding and prepared statements (bench/transitions:
    PostgreSQL's CPU per transition falls by about a quarter, as it no longer parses and
    plans the same few statements over and over, and psycopg no longer quotes every value
    into the SQL text). A statement is prepared on a connection after it ran
    DB_PREPARE_THRESHOLD times there. Behind PgBouncer in transaction mode older than
    1.21 (or without `max_prepared_statements`), set DB_PREPARE_THRESHOLD=off: a prepared
    statement lives in one server connection, and the next transaction may get another."""
    options: dict[str, Any] = {"server_side_binding": env_bool("DB_SERVER_SIDE_BINDING", True)}
    threshold = os.environ.get("DB_PREPARE_THRESHOLD", "5").strip().lower()
    options["prepare_threshold"] = None if threshold in {"", "off", "none"} else int(threshold)
    return options


def database_from_env(default_sqlite: Path) -> dict[str, Any]:
    """PostgreSQL when DATABASE_URL is set, otherwise the embedded SQLite file.

    SQLite runs in WAL mode with IMMEDIATE transactions so that a writer takes the
    write lock when its transaction begins, not half-way through (which would turn
    two concurrent transitions into a 'database is locked' error instead of a wait).
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        config: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))
        )
        if config["ENGINE"] == "django.db.backends.postgresql":
            config["OPTIONS"] = {**(config.get("OPTIONS") or {}), **postgresql_options()}
        return config
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
    # First: refuses every login attempt of a locked-out user name or address before a
    # password is even checked.
    "axes.backends.AxesStandaloneBackend",
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

# --- login throttling and lockout (django-axes; SECURITY.md) ---------------------------
# Failures are counted per user name and, separately, per client address; either count
# reaching its limit refuses every login for it, the right password included, until the
# cool-off ends or an administrator unlocks it (admin: Axes > Access attempts, delete; or
# `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`).
AXES_HANDLER = "accounts.lockout.LockoutHandler"  # the database handler, two limits
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
# Many people can share an address (an office behind NAT): it gets a higher limit.
LOGIN_FAILURE_LIMIT_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURE_LIMIT_PER_ADDRESS", "20"))
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
# 0: locked until an administrator unlocks.
_LOCKOUT_MINUTES = int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15"))
AXES_COOLOFF_TIME = timedelta(minutes=_LOCKOUT_MINUTES) if _LOCKOUT_MINUTES > 0 else None
# Not on success: a success from an address would wipe that address's failures against
# other user names too (axes resets every count the attempt matches), so an attacker with
# one account of their own could guess forever between their own logins.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_address"
# A persistent record of every failure (admin: Axes > Access failures) besides the counts.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# How many reverse proxies that append to X-Forwarded-For stand in front of Django. 0: none,
# the client address is the connection's (REMOTE_ADDR). Behind one proxy (nginx, a load
# balancer) set 1: the address that proxy saw is the last one in X-Forwarded-For. A
# larger value than the real number lets clients choose their own address (spoofing).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# --- sessions (accounts/sessions.py) ---------------------------------------------------------
# A session ends after this long without a request, and at the latest this long after the
# login, whatever the activity.
SESSION_IDLE_TIMEOUT = int(os.environ.get("SESSION_IDLE_MINUTES", "30")) * 60
SESSION_ABSOLUTE_TIMEOUT = int(os.environ.get("SESSION_MAX_HOURS", "12")) * 3600
# The cookie and the stored session never outlive the absolute limit.
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- response headers ----------------------------------------------------------------------
# Content-Security-Policy (django-csp): everything from this site only, nothing inline (no
# inline script or style, no style attributes), no eval, nothing remote. Pages and the
# Django admin are kept clean of inline code instead of allowing it; a page that ever
# needs an inline block gets a nonce (request.csp_nonce), never 'unsafe-inline'.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [CSP_NONE],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF],
        "font-src": [CSP_SELF],
        # the page's own fetches and its live-update WebSocket (same host: ws/wss)
        "connect-src": [CSP_SELF],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "object-src": [CSP_NONE],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Features no page uses, switched off for this site and anything it would embed.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

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

# Attachments: kept outside the web root, served only through the request's own view
# (Content-Disposition: attachment, nosniff) to people who may see the request.
ATTACHMENTS_DIR = Path(os.environ.get("ATTACHMENTS_DIR", VAR_DIR / "attachments"))
ATTACHMENT_MAX_BYTES = int(os.environ.get("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
# Extensions accepted, each with the content type it is served as (never rendered inline).
ATTACHMENT_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
# A request body larger than this is answered 413 before it is parsed (config.limits).
REQUEST_MAX_BYTES = ATTACHMENT_MAX_BYTES + 1024 * 1024
# The form fields of a post, files aside (Django's own limit; over it, config.limits says 413).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("FORM_MAX_BYTES", str(2_621_440)))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": ATTACHMENTS_DIR, "base_url": None},
    },
}

SECRET_KEY = os.environ.get("SECRET_KEY", "")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Every API error is RFC 9457 problem details (approvals.api.errors).
    "EXCEPTION_HANDLER": "approvals.api.errors.problem_exception_handler",
    # Calls per API token (or signed-in person) per minute; 429 with Retry-After beyond.
    "DEFAULT_THROTTLE_RATES": {"api": os.environ.get("API_RATE", "600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baton API",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    # Swagger UI and Redoc from drf-spectacular-sidecar's files under static/: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "approvals.api.schema.wait_operation",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Lockouts are said once, clearly, by accounts.lockout; axes' own lines repeat them.
        "axes": {"level": "WARNING"},
    },
}

# The work done outside a request (channel layer, Celery, outbox, webhooks, mail).
from config.settings.work import *  # noqa: E402, F403

# After a push, a process marks its events delivered in one UPDATE per this many seconds
# rather than one per push, when pushes follow each other (workflows.outbox_marks); the
# push lease (OUTBOX_PUSH_LEASE) keeps the relay off them meanwhile. Here, not in
# config.settings.work, because it depends on the database. 0: each push marks its own
# at once (the tests; SQLite, whose one writer a marking thread would only wait for).
OUTBOX_MARK_BATCH_SECONDS = float(
    os.environ.get(
        "OUTBOX_MARK_BATCH_SECONDS",
        "0.1" if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" else "0",
    )
)
