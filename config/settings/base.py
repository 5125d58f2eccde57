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

REDIS_URL = os.environ.get("REDIS_URL", "")

# The channel layer. With Redis: channels-redis's pub/sub layer. A group send is one
# PUBLISH that Redis hands to every process subscribed to the group, where the core layer
# keeps a sorted set per group and per channel (about 10 round trips and a Lua script for
# the 3 groups of a transition: 1.25 ms of CPU against 0.05 ms for one pipelined PUBLISH
# of the 3, measured here; see the outbox). Nothing is stored: a process that is
# disconnected misses what was published meanwhile, and the per-stream sequence numbers
# of the live events (workflows.live) reveal and heal the gap. This layer has no
# `capacity` to set: its bound is Redis's (client-output-buffer-limit pubsub), which cuts
# off a subscriber that falls too far behind; the same healing covers that.
#
# The in-memory layer (embedded mode) drops messages silently once a channel holds
# `capacity` of them; at the default of 100 a burst lost most of them in a measurement
# (DESIGN.md). 2,000 covers a bulk action over a full inbox page for every recipient.
CHANNEL_CAPACITY = int(os.environ.get("CHANNEL_CAPACITY", "2000"))
if REDIS_URL:
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "workflows.channel_layer.LeanPubSubChannelLayer",
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

# Live streams (workflows.live): each stream keeps its last LIVE_LOG_LENGTH events for at
# most LIVE_LOG_SECONDS, so a client that reconnects within them catches up event by
# event; further behind, it re-renders. Open sockets re-check what they may hear when
# membership changes, at the next delegation start or end, and every LIVE_RECHECK_SECONDS.
LIVE_LOG_LENGTH = int(os.environ.get("LIVE_LOG_LENGTH", "200"))
LIVE_LOG_SECONDS = float(os.environ.get("LIVE_LOG_SECONDS", "900"))
LIVE_RECHECK_SECONDS = float(os.environ.get("LIVE_RECHECK_SECONDS", "60"))
# A stream's counter in Redis lives this long after its last event (30 days); a stream
# heard again later starts a new life, and clients still holding its old numbers re-render.
LIVE_STREAM_SECONDS = int(os.environ.get("LIVE_STREAM_SECONDS", str(30 * 24 * 3600)))

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
    # Redis redelivers an unacknowledged task after this many seconds: longer than any
    # task's retry window (a system check, workflows.checks, holds it so).
    else {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        # kombu 5.7 sweeps for tasks past their visibility timeout only on every 10th try
        # (about every 100 s); every try (each 10 s) costs one Redis range read per worker
        # and a task orphaned by a killed worker comes back within seconds of its timeout.
        "unacked_restore_throttle": 1,
        "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
    }
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The audit trail's signed checkpoints (workflows.checkpoints), hourly by default.
AUDIT_CHECKPOINT_INTERVAL = float(os.environ.get("AUDIT_CHECKPOINT_INTERVAL", "3600"))
# How often beat looks for webhook and mail tasks lost with a broker's queue.
RESUME_SWEEP_SECONDS = float(os.environ.get("RESUME_SWEEP_SECONDS", "300"))
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "outbox-purge": {"task": "workflows.outbox_purge", "schedule": 3600.0},
    "audit-checkpoint": {"task": "workflows.audit_checkpoint", "schedule": AUDIT_CHECKPOINT_INTERVAL},
    # Fan-outs, webhook deliveries and mails whose task was lost are queued again.
    "webhook-resume": {"task": "workflows.webhook_resume", "schedule": RESUME_SWEEP_SECONDS},
    "webhook-purge": {"task": "workflows.webhook_purge", "schedule": 86400.0},
    # Reminders and escalations of overdue handoffs (approvals.timers): the timers live
    # in the database, so the scan's interval is their precision.
    # Each person's daily digest, sent in their local digest hour (approvals.mailing).
    "mail-digests": {"task": "approvals.digests_send", "schedule": 600.0},
    "mail-resume": {"task": "approvals.mail_resume", "schedule": RESUME_SWEEP_SECONDS},
    "timers-scan": {
        "task": "approvals.timers_scan",
        "schedule": float(os.environ.get("TIMERS_SCAN_SECONDS", "60")),
    },
    # The API's Idempotency-Key answers, kept 24 hours.
    "api-idempotency-purge": {"task": "approvals.idempotency_purge", "schedule": 3600.0},
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

# Webhooks (workflows.webhooks). Endpoints must use https, except these hosts (plain http
# allowed: a receiver on the same machine); a request's own callback URL must be on one of
# WEBHOOK_CALLBACK_HOSTS, and is signed with WEBHOOK_CALLBACK_SECRET (whsec_…; derived
# from SECRET_KEY when unset, so each deployment has its own).
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS", [])
WEBHOOK_CALLBACK_HOSTS = env_list("WEBHOOK_CALLBACK_HOSTS", [])
WEBHOOK_CALLBACK_SECRET = os.environ.get("WEBHOOK_CALLBACK_SECRET", "")
# Seconds to wait after each failed attempt; the delivery is dead after one attempt more.
WEBHOOK_RETRY_SCHEDULE = [
    float(s) for s in os.environ.get("WEBHOOK_RETRY_SCHEDULE", "5,30,120,600,3600,10800,21600").split(",")
]
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "10"))
# How long the old secret keeps signing after a rotation (receivers switch meanwhile).
WEBHOOK_SECRET_OVERLAP = float(os.environ.get("WEBHOOK_SECRET_OVERLAP", str(24 * 3600)))
# A pending delivery this many seconds overdue has lost its task: beat queues it again.
WEBHOOK_RESUME_AFTER = float(os.environ.get("WEBHOOK_RESUME_AFTER", "600"))
# Delivered and dead deliveries (and their attempts) are kept this long in the log.
WEBHOOK_KEEP_DAYS = int(os.environ.get("WEBHOOK_KEEP_DAYS", "30"))

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
# The SMTP server of the smtp backend (production's default backend).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Without a timeout a silent SMTP server would hold a worker (and a mail's lease) forever.
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "20"))
# Mail leaves through approvals.mail_sending: seconds to wait after each failed attempt (the
# mail is dead after one attempt more), how long one attempt owns a mail (longer than
# EMAIL_TIMEOUT), and how overdue a pending mail is before beat queues it again.
MAIL_RETRY_SCHEDULE = [
    float(s) for s in os.environ.get("MAIL_RETRY_SCHEDULE", "30,120,600,3600,10800,21600").split(",")
]
MAIL_SEND_LEASE = float(os.environ.get("MAIL_SEND_LEASE", "60"))
MAIL_RESUME_AFTER = float(os.environ.get("MAIL_RESUME_AFTER", "600"))
MAIL_KEEP_DAYS = int(os.environ.get("MAIL_KEEP_DAYS", "30"))
BATON_BASE_URL = os.environ.get("BATON_BASE_URL", "http://127.0.0.1:8000")
# The daily digest of notifications goes out at this hour of each person's local morning.
BATON_DIGEST_HOUR = int(os.environ.get("BATON_DIGEST_HOUR", "8"))
# How long an approve / reject link in a mail works (approvals.action_links).
BATON_ACTION_LINK_DAYS = int(os.environ.get("BATON_ACTION_LINK_DAYS", "7"))

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
