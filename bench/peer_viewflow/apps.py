from django.apps import AppConfig


class PeerViewflowConfig(AppConfig):
    name = "bench.peer_viewflow"
    label = "peer_viewflow"
    verbose_name = "Viewflow peer of the benchmark"
    default_auto_field = "django.db.models.BigAutoField"
