"""The Celery application. Tasks stay thin: they call services.

It chooses no settings module itself (this module is imported with the `config` package,
also by entry points with defaults of their own, e.g. config.wsgi): a worker gets
DJANGO_SETTINGS_MODULE from its environment, as `make run` and production set it.
"""

from celery import Celery

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
