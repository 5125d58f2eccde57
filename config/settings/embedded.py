"""The embedded default: one machine, SQLite, in-memory channel layer, filesystem broker.

Safe only on a developer's machine; production settings live in production.py.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import AUDIT_SIGNING_KEY, AUDIT_SIGNING_KEY_FILE, SECRET_KEY, env_bool, env_list

# Off by default, even here: Django's debug pages list every URL and setting. BATON_DEBUG=1
# turns them on for development.
DEBUG = env_bool("BATON_DEBUG", False)
# A fixed key is fine here: the embedded mode is never exposed beyond localhost.
SECRET_KEY = SECRET_KEY or "embedded-insecure-key-do-not-use-in-production-3c9f1e"

# The embedded mode keeps its files in VAR_DIR; make sure the folders exist.
from config.settings.base import CELERY_BROKER_FOLDER, EMAIL_FILE_PATH, STATIC_ROOT, VAR_DIR  # noqa: E402

for _folder in (
    VAR_DIR,
    CELERY_BROKER_FOLDER,
    VAR_DIR / "broker-processed",
    VAR_DIR / "broker-control",
    EMAIL_FILE_PATH,
    STATIC_ROOT,  # WhiteNoise warns on every start while it is missing
):
    _folder.mkdir(parents=True, exist_ok=True)

# The embedded mode signs audit checkpoints with a key it generates on first use (and says
# so), in var/ beside the database: copy its public key somewhere else to rely on it.
AUDIT_SIGNING_KEY_FILE = AUDIT_SIGNING_KEY_FILE or str(VAR_DIR / "audit-signing-key.pem")
AUDIT_SIGNING_KEY_GENERATE = not AUDIT_SIGNING_KEY

# A receiver on this machine may take webhooks over plain http.
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
