"""Test settings: the embedded defaults, honouring DATABASE_URL / REDIS_URL when set."""

import os

from config.settings.embedded import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405  (a UUID-keyed workflow for the engine tests)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The integration tests' worker processes send to a real SMTP receiver (TEST_EMAIL_BACKEND).
EMAIL_BACKEND = os.environ.get("TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
# The in-process relay belongs to a running ASGI server; tests drive the relay explicitly.
OUTBOX_RELAY_IN_ASGI = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Tests listen on the in-memory layer from the test process itself.
OUTBOX_CHANNEL_LAYER_IN_PROCESS = True
# Without Redis, tasks pushed after commit must not land in var/broker, where a developer's
# embedded worker would run them against the wrong database.
if not REDIS_URL:  # noqa: F405
    CELERY_BROKER_URL = "memory://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
# Checkpoints are signed with a key of the tests' own, never the developer's embedded one.
if not os.environ.get("AUDIT_SIGNING_KEY_FILE"):
    AUDIT_SIGNING_KEY_FILE = str(VAR_DIR / "audit-signing-key-test.pem")  # noqa: F405
OUTBOX_MARK_BATCH_SECONDS = 0.0  # tests see each push's events marked at once (workflows.outbox_marks)
