from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken, Delegation, Holiday, Team, TeamMembership, User, WorkingCalendar
from accounts.sessions import sessions_end_everywhere


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Reporting line", {"fields": ("manager",)}),
        # A service account's roles are its groups; the request types it may submit are
        # object permissions on each type (the type's "Object permissions" page).
        ("Machine client", {"fields": ("is_service_account",)}),
    )
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "manager",
        "is_active",
        "is_staff",
        "is_service_account",
    ]
    list_filter = [*BaseUserAdmin.list_filter, "is_service_account"]
    autocomplete_fields = ["manager"]
    actions = ["end_sessions"]

    @admin.action(description="Log the selected people out everywhere", permissions=["change"])
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        people = list(queryset)
        for person in people:
            sessions_end_everywhere(person)
        self.message_user(
            request, f"Every session of {len(people)} person(s) has ended.", level=messages.SUCCESS
        )


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamMembershipInline]


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    """Delegations are set up and revoked on the Delegations page, whose services check who
    may and what is sensible; here an administrator reads them, and whoever edits one is
    kept as its creator (a new one) or revoker (when the revocation time is set)."""

    list_display = [
        "delegator",
        "delegate",
        "scope",
        "starts_at",
        "ends_at",
        "revoked_at",
        "reason",
        "created_by",
        "revoked_by",
    ]
    list_filter = ["revoked_at"]
    autocomplete_fields = ["delegator", "delegate"]
    readonly_fields = ["created_at", "created_by", "revoked_by"]

    def save_model(self, request: HttpRequest, obj: Delegation, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        if obj.revoked_at is not None and obj.revoked_by_id is None:
            obj.revoked_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are read and revoked here; an administrator issues a service account's
    token with `manage.py api_token_issue` (its secret is printed once)."""

    list_display = [
        "name",
        "owner",
        "prefix",
        "read_only",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["read_only", "owner__is_service_account"]
    search_fields = ["name", "prefix", "owner__username"]
    readonly_fields = ["owner", "name", "prefix", "secret_sha256", "created_at", "last_used_at", "read_only"]
    fields = [*readonly_fields, "expires_at", "revoked_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "time_zone", "day_starts", "day_ends"]
    inlines = [HolidayInline]
