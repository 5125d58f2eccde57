from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from approvals.models import ApprovalRequest, Notification, RequestType


@admin.register(RequestType)
class RequestTypeAdmin(GuardedModelAdmin):
    """'Object permissions' on a type's page grants who may submit it (submit_requesttype)."""

    list_display = ["name", "slug", "current_policy", "is_active"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    """Read-only: requests change only through their lifecycle actions (the service)."""

    list_display = ["id", "title", "request_type", "requester", "state", "version", "created_at"]
    list_filter = ["state", "request_type"]
    search_fields = ["title", "requester__username"]
    list_select_related = ["request_type", "requester"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "subject", "read_at"]
    list_select_related = ["recipient"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
