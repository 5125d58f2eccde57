from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflow engine"

    def ready(self) -> None:
        # Imported in ready(): they read the models, which are loaded only now; the checks
        # register system checks, the subscriptions connect their signal receivers.
        from workflows import checks, subscriptions  # noqa: F401, PLC0415
