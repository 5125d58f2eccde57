"""Test settings: the embedded defaults, honouring DATABASE_URL / REDIS_URL when set."""

from config.settings.embedded import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The in-process relay belongs to a running ASGI server; tests drive the relay explicitly.
OUTBOX_RELAY_IN_ASGI = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Tests listen on the in-memory layer from the test process itself.
OUTBOX_CHANNEL_LAYER_IN_PROCESS = True
