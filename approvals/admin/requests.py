"""Requests, read-only: they change only through their lifecycle actions (the transition service)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from approvals.admin.display import diagram_box, lifecycle_diagram_svg
from approvals.diagrams import StageMark, policy_svg
from approvals.models import ApprovalRequest, Decision, Notification, RequestRevision, State
from approvals.routing import condition_holds


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
class ApprovalRequestAdmin(admin.ModelAdmin):
    """Read-only: requests change only through their lifecycle actions (the service)."""

    list_display = ["id", "title", "request_type", "requester", "state", "version", "created_at"]
    list_filter = ["state", "request_type"]
    search_fields = ["title", "requester__username"]
    list_select_related = ["request_type", "requester"]
    readonly_fields = ["lifecycle_diagram", "route_diagram"]
    inlines = [RequestRevisionInline, DecisionInline]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Lifecycle")
    def lifecycle_diagram(self, obj: ApprovalRequest) -> str:
        return diagram_box(lifecycle_diagram_svg(current=obj.state))

    @admin.display(description="Route")
    def route_diagram(self, obj: ApprovalRequest) -> str:
        policy = obj.policy
        if policy is None:
            return "Not submitted yet."
        marks: dict[int, StageMark] = {}
        for index, stage in enumerate(policy.stages):
            if not condition_holds(stage.condition, obj.payload):
                marks[index] = StageMark(status="skipped")
            elif obj.state == State.APPROVED or (
                obj.state == State.IN_REVIEW and obj.stage_index is not None and index < obj.stage_index
            ):
                # The route only moves past a stage whose rule was met.
                marks[index] = StageMark(status="met")
            elif obj.state == State.IN_REVIEW and index == obj.stage_index:
                marks[index] = StageMark(status="current")
        return diagram_box(policy_svg(policy=policy, marks=marks, title=f"Route of {obj.reference}"))


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "subject", "read_at"]
    list_select_related = ["recipient"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
