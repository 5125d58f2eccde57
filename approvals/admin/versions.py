"""Policy versions: drafts edited as YAML; publishing, copying and simulating; published ones read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join

from approvals.admin.display import admin_user, change_url, diagram_box, document_yaml, route_box
from approvals.admin.forms import NEW_POLICY, PolicyVersionForm, SimulationForm
from approvals.diagrams import StageMark, policy_svg
from approvals.models import ApprovalRequest, PolicyVersion
from approvals.publishing import (
    IN_FLIGHT,
    policy_draft_create,
    policy_publish,
    policy_simulate,
    version_problems,
)
from approvals.routing import Policy, PolicyError
from approvals.schemas import payload_errors
from workflows import errors


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Drafts are edited here; published versions are read-only forever (requests were
    routed by them). Publishing, copying and simulating are buttons on a version's page."""

    form = PolicyVersionForm
    change_form_template = "admin/approvals/policyversion/change_form.html"
    list_display = [
        "request_type",
        "number",
        "status",
        "published_at",
        "published_by",
        "source",
        "created_at",
    ]
    list_filter = ["status", "request_type"]
    list_select_related = ["request_type", "published_by"]
    search_fields = ["request_type__slug", "request_type__name", "source"]
    details = ["source", "created_by", "created_at", "published_by", "published_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["request_type", "document"]
        document = "document_text" if obj.is_published else "document"
        return ["request_type", "number", "status_note", document, "route_diagram", "checks", *self.details]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [
            "request_type",
            "number",
            "status_note",
            "document_text",
            "route_diagram",
            "checks",
            *self.details,
        ]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"document": NEW_POLICY, **super().get_changeform_initial_data(request)}

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> Any:
        # The bulk delete would bypass PolicyVersion.delete(), which refuses published versions.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- read-only parts of the page ---

    @admin.display(description="Status")
    def status_note(self, obj: PolicyVersion) -> str:
        if obj.is_published:
            current = (
                " It is the type's current version." if obj.request_type.current_policy_id == obj.pk else ""
            )
            return (
                f"Published on {obj.published_at:%Y-%m-%d %H:%M} by {obj.published_by or 'the system'}. "
                f"Published versions never change and cannot be deleted: requests were routed by it.{current} "
                "To change the policy, make a new draft from this version."
            )
        return "Draft: no request follows it until it is published."

    @admin.display(description="Document")
    def document_text(self, obj: PolicyVersion) -> str:
        return format_html('<pre class="baton-document">{}</pre>', document_yaml(obj.document))

    @admin.display(description="Route")
    def route_diagram(self, obj: PolicyVersion) -> str:
        return route_box(obj)

    @admin.display(description="Checks")
    def checks(self, obj: PolicyVersion) -> str:
        problems = version_problems(obj)
        if not problems:
            return "Ready to publish: no problems found." if not obj.is_published else "No problems found."
        return format_html(
            '<ul class="errorlist">{}</ul>', format_html_join("", "<li>{}</li>", ((p,) for p in problems))
        )

    # --- saving goes through the drafting service ---

    def save_model(
        self, request: HttpRequest, obj: PolicyVersion, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            obj.save()
            return
        created = policy_draft_create(
            request_type=obj.request_type, document=obj.document, actor=admin_user(request), source="admin"
        )
        # The admin goes on with `obj` (log entry, redirect): make it the row just created.
        for model_field in PolicyVersion._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(created, model_field.attname))
        obj._state.adding, obj._state.db = False, created._state.db

    # --- buttons: publish, new draft, simulate ---

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/publish/", wrap(self.publish_view), name=f"{name}_publish"),
            path("<path:object_id>/new-draft/", wrap(self.new_draft_view), name=f"{name}_new_draft"),
            path("<path:object_id>/simulate/", wrap(self.simulate_view), name=f"{name}_simulate"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        version = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if version is not None:
            extra.update(
                may_publish=not version.is_published and super().has_change_permission(request),
                may_copy=self.has_add_permission(request),
                may_simulate=self.has_view_permission(request, version),
            )
        return super().change_view(request, object_id, form_url, extra)

    def _version(self, request: HttpRequest, object_id: str) -> PolicyVersion:
        return get_object_or_404(PolicyVersion.objects.select_related("request_type"), pk=object_id)

    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version(request, object_id)
        # Model-level change permission: the object-level one is false once published.
        if not super().has_change_permission(request):
            raise PermissionDenied
        try:
            published = policy_publish(version=version, actor=admin_user(request))
        except errors.InvalidInput as exc:
            problems = exc.field_errors.get("document") or [exc.detail]
            self.message_user(
                request, f"{version} was not published: {len(problems)} problem(s).", messages.ERROR
            )
            for problem in problems:
                self.message_user(request, problem, messages.ERROR)
        except errors.WorkflowError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            self.message_user(
                request, f"{published} is published: new requests of this type follow it.", messages.SUCCESS
            )
            behind = (
                ApprovalRequest.objects.filter(IN_FLIGHT, request_type=version.request_type)
                .exclude(policy_version=published)
                .count()
            )
            if behind:
                self.message_user(
                    request,
                    f"{behind} request(s) in flight keep their earlier version. To move them: "
                    f"manage.py policy_move --type {version.request_type.slug} --to {published.number} "
                    "(a dry run first; --apply moves them).",
                    messages.INFO,
                )
        return HttpResponseRedirect(change_url(version))

    def new_draft_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            draft = policy_draft_create(
                request_type=version.request_type,
                document=version.document,
                actor=admin_user(request),
                source=f"admin, from v{version.number}",
            )
        except PolicyError as exc:
            self.message_user(
                request, f"{version} cannot be copied: " + "; ".join(exc.problems), messages.ERROR
            )
            return HttpResponseRedirect(change_url(version))
        self.message_user(
            request, f"{draft} is a new draft, copied from v{version.number}.", messages.SUCCESS
        )
        return HttpResponseRedirect(change_url(draft))

    def simulate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        version = self._version(request, object_id)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        form = SimulationForm(request.POST if request.method == "POST" else None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": version,
            "title": f"Simulate {version}",
            "form": form,
        }
        try:
            policy = version.policy
        except PolicyError as exc:
            context["unreadable"] = exc.problems
            policy = None
        if policy is not None and form.is_valid():
            context.update(self._simulation(version, policy, form.cleaned_data))
        elif policy is not None:
            context["diagram"] = diagram_box(policy_svg(policy=policy, title=f"Approval route of {version}"))
        return TemplateResponse(request, "admin/approvals/policyversion/simulate.html", context)

    def _simulation(self, version: PolicyVersion, policy: Policy, data: dict[str, Any]) -> dict[str, Any]:
        route = policy_simulate(policy=policy, payload=data["payload"], requester=data["requester"])
        marks = {}
        for step in route.steps:
            if not step.applies:
                marks[step.index] = StageMark(status="skipped", note=step.reason)
            elif step.problem:
                marks[step.index] = StageMark(status="failed", note=step.problem)
        refused = payload_errors(schema=version.request_type.payload_schema, payload=data["payload"])
        return {
            "route_lines": route.describe(),
            "diagram": diagram_box(
                policy_svg(policy=policy, marks=marks, title=f"Route for {data['requester']} under {version}")
            ),
            "payload_notes": [f"{name}: {m}" for name, msgs in refused.items() for m in msgs],
        }
