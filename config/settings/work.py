"""Settings of the work done outside a request: the channel layer and live streams, Celery
and its schedule, the outbox relay, webhooks, mail and the audit signing key. Part of
config.settings.base, which imports every name of this module."""

from __future__ import annotations

import os
from typing import Any

from config.settings.env import REDIS_URL, VAR_DIR, env_bool, env_list

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
# How often beat looks for webhook, mail and notification tasks lost with a broker's queue.
RESUME_SWEEP_SECONDS = float(os.environ.get("RESUME_SWEEP_SECONDS", "300"))
# A notification task delivered this many seconds ago and never done was lost: beat hands
# it to the relay again (approvals.notifications).
NOTIFY_RESUME_AFTER = float(os.environ.get("NOTIFY_RESUME_AFTER", "600"))
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
    # Notification tasks lost with the broker's queue (Redis restarted without persistence).
    "notifications-resume": {"task": "approvals.notifications_resume", "schedule": RESUME_SWEEP_SECONDS},
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
