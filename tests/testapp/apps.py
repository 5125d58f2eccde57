from django.apps import AppConfig


class TestappConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    verbose_name = "Engine test workflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported in ready(): the workflow reads the models, which are loaded only now.
        from tests.testapp.workflow import TicketWorkflow  # noqa: PLC0415
        from workflows.definition import workflow_register  # noqa: PLC0415

        workflow_register(TicketWorkflow())
