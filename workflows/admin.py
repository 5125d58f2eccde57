"""Admin views of the engine's tables: read-only. Changes go through workflows.services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from workflows.models import AuditEntry, Handoff, OutboxEvent
from workflows.outbox import outbox_retry_dead


class ReadOnly:
    """For admins and inlines of rows that change only through the services: no add,
    change or delete from the admin, whoever looks."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "content_type",
        "object_id",
        "seq",
        "action",
        "source",
        "target",
        "actor",
        "on_behalf_of",
    ]
    list_filter = ["kind", "content_type", "action"]
    search_fields = ["object_id", "comment", "trace_id", "actor__username"]
    date_hierarchy = "created_at"
    list_select_related = ["content_type", "actor", "on_behalf_of"]


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "content_type",
        "object_id",
        "stage",
        "assignee",
        "candidate_group",
        "due_at",
        "opened_at",
        "closed_at",
        "close_reason",
    ]
    list_filter = ["content_type", "close_reason", "candidate_group"]
    list_select_related = ["content_type", "assignee", "candidate_group"]


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "destination", "status", "attempts", "available_at", "last_error"]
    list_filter = ["status", "kind"]
    actions = ["retry_dead"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the retry action; the form itself stays read-only (no editable fields).
        return bool(request.user.is_superuser)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in OutboxEvent._meta.fields]

    @admin.action(description="Queue the selected dead-letter events again")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = outbox_retry_dead(event_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} dead event(s) queued again.", messages.SUCCESS)
