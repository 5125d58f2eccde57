"""WSGI entry point: production HTTP workers (sync DRF measured faster under WSGI).

Defaults to the production settings: a WSGI server is how Baton runs in production, where
DEBUG must be off and the secret key must come from the environment (production refuses
to start without one). The embedded mode runs ASGI (`make run`).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
