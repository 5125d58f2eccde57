from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflow engine"

    def ready(self) -> None:
        # Imported in ready(): the checks read the models, which are loaded only now.
        from workflows import checks  # noqa: F401, PLC0415  (registers system checks)
