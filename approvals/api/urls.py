from django.urls import include, path, re_path

from approvals.api import views, wait, work
from approvals.api.errors import api_not_found

app_name = "api"

urlpatterns = [
    path("request-types/", views.RequestTypeList.as_view(), name="request_types"),
    path("request-types/<slug:slug>/", views.RequestTypeDetail.as_view(), name="request_type"),
    path(
        "request-types/<slug:slug>/simulate/",
        views.RequestTypeSimulate.as_view(),
        name="request_type_simulate",
    ),
    path("requests/", views.RequestList.as_view(), name="requests"),
    path("requests/<int:pk>/", views.RequestDetailView.as_view(), name="request"),
    # An async view on a path of its own: production routes /wait/ to the ASGI processes.
    path("requests/<int:pk>/wait/", wait.request_wait, name="request_wait"),
    path("requests/<int:pk>/actions/<slug:name>/", views.RequestAction.as_view(), name="request_action"),
    path("inbox/", work.Inbox.as_view(), name="inbox"),
    path("handoffs/<int:pk>/claim/", work.HandoffClaim.as_view(), name="handoff_claim"),
    path("handoffs/<int:pk>/release/", work.HandoffRelease.as_view(), name="handoff_release"),
    path("handoffs/<int:pk>/reassign/", work.HandoffReassign.as_view(), name="handoff_reassign"),
    path("audit/entries/", work.AuditEntries.as_view(), name="audit_entries"),
    path("audit/export/", work.AuditExportView.as_view(), name="audit_export"),
    path("webhooks/", include("approvals.api.webhooks")),
    # Last: whatever else is asked under /api/v1/ is a 404 problem, not an HTML page.
    re_path(r"^[\s\S]*$", api_not_found, name="not_found"),  # newlines included
]
