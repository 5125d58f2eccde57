"""System checks: every workflow model has a protected FSM `state` field."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import FieldDoesNotExist
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
