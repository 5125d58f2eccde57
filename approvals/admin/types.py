"""Request types: name, payload schema, who may submit (object permissions), their versions and diagrams."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from guardian.admin import GuardedModelAdmin

from approvals.admin.display import change_url, diagram_box, lifecycle_diagram_svg, route_box
from approvals.admin.forms import RequestTypeForm
from approvals.models import RequestType
from approvals.publishing import version_problems


@admin.register(RequestType)
class RequestTypeAdmin(GuardedModelAdmin):
    """'Object permissions' on a type's page grants who may submit it (submit_requesttype).

    The policy is not edited here: it is a PolicyVersion, drafted and published on its own.
    """

    form = RequestTypeForm
    list_display = ["name", "slug", "current_policy", "is_active"]
    list_select_related = ["current_policy"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["current_policy_link", "policy_versions_list", "policy_diagram", "lifecycle_diagram"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets: list[Any] = [
            (None, {"fields": ["name", "slug", "description", "is_active"]}),
            ("Payload", {"fields": ["payload_schema"]}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    "Approval policy",
                    {"fields": ["current_policy_link", "policy_versions_list", "policy_diagram"]},
                )
            )
        fieldsets.append(("Request lifecycle", {"fields": ["lifecycle_diagram"]}))
        return fieldsets

    @admin.display(description="Current policy")
    def current_policy_link(self, obj: RequestType) -> str:
        if obj.current_policy is None:
            return "None yet: publish a policy version to open this type for requests."
        return format_html('<a href="{}">{}</a>', change_url(obj.current_policy), obj.current_policy)

    @admin.display(description="Versions")
    def policy_versions_list(self, obj: RequestType) -> str:
        versions = list(obj.policy_versions.select_related("published_by").order_by("-number"))
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">v{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    change_url(v),
                    v.number,
                    v.get_status_display() + (" (current)" if v.pk == obj.current_policy_id else ""),
                    f"{v.published_at:%Y-%m-%d %H:%M} by {v.published_by or 'the system'}"
                    if v.published_at
                    else "",
                    v.source,
                )
                for v in versions
            ),
        )
        add_url = reverse("admin:approvals_policyversion_add") + f"?request_type={obj.pk}"
        table = (
            format_html(
                "<table><thead><tr><th>Version</th><th>Status</th><th>Published</th><th>Source</th></tr></thead>"
                "<tbody>{}</tbody></table>",
                rows,
            )
            if versions
            else "No versions yet. "
        )
        return format_html('{}<p><a href="{}" class="addlink">Add a draft version</a></p>', table, add_url)

    @admin.display(description="Route")
    def policy_diagram(self, obj: RequestType) -> str:
        if obj.current_policy is None:
            return "—"
        return route_box(obj.current_policy)

    @admin.display(description="Lifecycle")
    def lifecycle_diagram(self, obj: RequestType | None) -> str:
        return diagram_box(lifecycle_diagram_svg())

    def save_model(self, request: HttpRequest, obj: RequestType, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "payload_schema" in form.changed_data and obj.current_policy is not None:
            # Not refused: the published version stays what it is, but the admin should know
            # that its conditions no longer fit the fields requests will carry.
            for problem in version_problems(obj.current_policy):
                self.message_user(
                    request, f"{obj.current_policy}, with the new schema: {problem}", messages.WARNING
                )
