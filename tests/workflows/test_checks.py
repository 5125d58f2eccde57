"""System check workflows.E001: a workflow model must keep its state behind the service."""

from __future__ import annotations

from django.apps import apps
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps
from django_fsm import FSMField

from workflows.checks import workflow_models_have_protected_state
from workflows.models import WorkflowModel


def test_e001_names_each_workflow_model_without_a_protected_fsm_state():
    with isolate_apps("tests.testapp") as registry:
        # given workflow models whose state is unprotected, a plain column, or missing
        class UnprotectedTicket(WorkflowModel):
            state = FSMField(default="open")

            class Meta:
                app_label = "testapp"

        class PlainStateTicket(WorkflowModel):
            state = models.CharField(max_length=20, default="open")

            class Meta:
                app_label = "testapp"

        class StatelessTicket(WorkflowModel):
            class Meta:
                app_label = "testapp"

        # and one done right, and a model that is no workflow at all
        class GoodTicket(WorkflowModel):
            state = FSMField(default="open", protected=True)

            class Meta:
                app_label = "testapp"

        class Note(models.Model):
            state = models.CharField(max_length=20)

            class Meta:
                app_label = "testapp"

        # when the check runs over that app
        found = workflow_models_have_protected_state(app_configs=[registry.get_app_config("testapp")])
    # then each bad workflow model gets E001, naming it and how to fix it
    assert {(message.id, message.obj) for message in found} == {
        ("workflows.E001", UnprotectedTicket),
        ("workflows.E001", PlainStateTicket),
        ("workflows.E001", StatelessTicket),
    }
    assert all(message.level == checks.ERROR for message in found)
    assert all("FSMField(protected=True)" in message.msg for message in found)
    assert {GoodTicket, Note}.isdisjoint(message.obj for message in found)


def test_the_project_s_workflow_models_pass_e001():
    # given the installed workflows (approval requests, the UUID-keyed test ticket)
    workflow_labels = {m._meta.label for m in apps.get_models() if issubclass(m, WorkflowModel)}
    assert {"approvals.ApprovalRequest", "testapp.Ticket"} <= workflow_labels
    # when the registered checks run  /  then none of them is E001
    assert workflow_models_have_protected_state() == []
    assert [m for m in checks.run_checks() if m.id == "workflows.E001"] == []
