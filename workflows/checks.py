"""System checks: every workflow model has a protected FSM `state` field; the broker's
visibility timeout outlasts every task's retries."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import FieldDoesNotExist
from django.utils.module_loading import autodiscover_modules
from django_fsm import FSMFieldMixin

from workflows.models import WorkflowModel


@register()
def workflow_models_have_protected_state(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    # `manage.py check <app>` passes the apps to check; with none given, check them all.
    models = (
        [model for app_config in app_configs for model in app_config.get_models()]
        if app_configs is not None
        else apps.get_models()
    )
    for model in models:
        if not issubclass(model, WorkflowModel):
            continue
        field_name: str = "state"
        try:
            state = model._meta.get_field(field_name)
        except FieldDoesNotExist:
            state = None
        if not isinstance(state, FSMFieldMixin) or not state.protected:
            problems.append(
                Error(
                    f"{model._meta.label} must declare state = FSMField(protected=True).",
                    hint="Only workflows.services.transition may change a workflow's state.",
                    obj=model,
                    id="workflows.E001",
                )
            )
    return problems


# Brokers that hand an unacknowledged task to another worker after a visibility timeout.
VISIBILITY_BROKERS = ("redis://", "rediss://", "sqs://", "redis+socket://")
REDIS_DEFAULT_VISIBILITY = 3600


def retry_window(task: Any) -> float:
    """The longest a task may take from its first try to its last: its retries' delays
    (doubling with `retry_backoff`, up to `retry_backoff_max`) and its time limit."""
    retries = task.max_retries or 0
    delay = float(task.default_retry_delay or 0)
    backoff = getattr(task, "retry_backoff", False)
    if backoff:
        base = float(backoff if not isinstance(backoff, bool) else 1)
        ceiling = float(getattr(task, "retry_backoff_max", 600))
        waits = sum(min(ceiling, base * 2**i) for i in range(retries))
    else:
        waits = retries * delay
    return waits + float(task.time_limit or 0)


@register()
def broker_visibility_outlasts_retries(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With acks_late, a task still retrying when the broker's visibility timeout passes
    is handed to a second worker and runs twice at once: the timeout must be longer."""
    url = str(getattr(settings, "CELERY_BROKER_URL", ""))
    if not url.startswith(VISIBILITY_BROKERS):
        return []
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    timeout = float(options.get("visibility_timeout", REDIS_DEFAULT_VISIBILITY))
    problems: list[CheckMessage] = []
    autodiscover_modules("tasks")  # Celery finds them only when a worker starts
    for name, task in sorted(current_app.tasks.items()):
        if name.startswith("celery."):
            continue
        window = retry_window(task)
        if window >= timeout:
            problems.append(
                Error(
                    f"Task {name} may retry for {window:.0f}s, longer than the broker's visibility "
                    f"timeout of {timeout:.0f}s: a second worker would run it while it still retries.",
                    hint="Raise CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'] "
                    "(CELERY_VISIBILITY_TIMEOUT) or shorten the task's retries.",
                    id="workflows.E002",
                )
            )
    return problems
