"""Requests, read-only: they change only through their lifecycle actions (the transition service)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from approvals.admin.display import diagram_box, lifecycle_diagram_svg
from approvals.models import ApprovalRequest, Decision, Notification, OutgoingMail, RequestRevision
from approvals.selectors.route import route_view
from workflows.admin import ReadOnly, ReadOnlyAdmin
from workflows.selectors import audit_entries_for_instance, handoffs_for_instance


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False


class RequestRevisionInline(ReadOnlyInline):
    model = RequestRevision
    fields = ["number", "title", "changes", "created_by", "created_at"]
    readonly_fields = ["changes"]

    @admin.display(description="Changes from the revision before")
    def changes(self, obj: RequestRevision) -> str:
        return format_html_join(
            "",
            "<div>{}: {} → {}</div>",
            (
                (d.get("field"), json.dumps(d.get("before")), json.dumps(d.get("after")))
                for d in obj.diff or []
            ),
        ) or ("first submission" if obj.number == 1 else "no changes")


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["revision", "stage_name", "outcome", "principal", "actor", "comment", "created_at"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Read-only: requests change only through their lifecycle actions (the service)."""

    list_display = ["id", "title", "request_type", "requester", "state", "version", "created_at"]
    list_filter = ["state", "request_type"]
    search_fields = ["title", "requester__username"]
    list_select_related = ["request_type", "requester"]
    readonly_fields = ["lifecycle_diagram", "route_diagram"]
    inlines = [RequestRevisionInline, DecisionInline]

    @admin.display(description="Lifecycle")
    def lifecycle_diagram(self, obj: ApprovalRequest) -> str:
        return diagram_box(lifecycle_diagram_svg(current=obj.state))

    @admin.display(description="Route")
    def route_diagram(self, obj: ApprovalRequest) -> str:
        # The same marks as the request page: read from the audit trail and the decisions.
        view = route_view(
            request=obj,
            entries=audit_entries_for_instance(obj),
            decisions=list(obj.decisions.select_related("principal", "actor").order_by("id")),
            handoffs=handoffs_for_instance(obj),
        )
        return diagram_box(view.svg) if view is not None else "Not submitted yet."


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "subject", "read_at"]
    list_select_related = ["recipient"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutgoingMail)
class OutgoingMailAdmin(ReadOnlyAdmin):
    """Mails to send and sent (approvals.mail_sending): read-only, as the task owns them."""

    list_display = ["created_at", "address", "subject", "status", "failures", "sent_at"]
    list_filter = ["status"]
    search_fields = ["address", "message_id"]
