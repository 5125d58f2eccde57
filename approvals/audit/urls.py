from django.urls import path

from approvals.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.log, name="log"),
    path("entries/<int:pk>/", views.entry_raw, name="entry"),
    path("export.csv", views.export_log, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", views.export_log, {"fmt": "jsonl"}, name="export_jsonl"),
    path("bundle.zip", views.bundle_range, name="bundle"),
    path("requests/<int:pk>/", views.evidence_page, name="evidence"),
    path("requests/<int:pk>/bundle.zip", views.bundle_request, name="evidence_bundle"),
    path("separation-of-duties/", views.sod_page, name="sod"),
    path("checkpoints/", views.checkpoint_list, name="checkpoints"),
    path("checkpoints/<int:pk>.json", views.checkpoint_download, name="checkpoint"),
    path("public-key.pem", views.public_key, name="public_key"),
    path("exports/", views.export_list, name="exports"),
]
