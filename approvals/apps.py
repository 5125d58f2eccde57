from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # The meaning of ApprovalRequest's actions: registered here so that the model
        # never imports the code that acts on it (the engine finds it from the model).
        # Imported in ready(): the lifecycle reads the models, which are loaded only now.
        from approvals.lifecycle import LIFECYCLE  # noqa: PLC0415
        from approvals.lifecycle.exports import EXPORTS  # noqa: PLC0415
        from approvals.models import ApprovalRequest  # noqa: PLC0415
        from approvals.webhooks import REQUEST_WEBHOOKS  # noqa: PLC0415
        from workflows.definition import workflow_register  # noqa: PLC0415
        from workflows.webhooks.registry import webhook_source_register  # noqa: PLC0415

        workflow_register(LIFECYCLE)
        workflow_register(EXPORTS)
        # What webhooks send about requests, and to whom (the engine cannot import approvals).
        webhook_source_register(ApprovalRequest, REQUEST_WEBHOOKS)
