from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflow engine"

    def ready(self) -> None:
        from workflows import checks  # noqa: F401  (registers system checks)
