"""What the admin pages show besides fields: diagrams, links, the policy as YAML."""

from __future__ import annotations

from typing import Any

import yaml
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import User
from approvals.diagrams import StageMark, lifecycle_svg, policy_svg
from approvals.models import OPEN_STATES, ApprovalRequest, PolicyVersion, State
from approvals.routing import PolicyError

# Styled by static/css/admin.css: the Content-Security-Policy refuses style attributes.
MONOSPACE = {"class": "baton-mono", "spellcheck": "false"}


def diagram_box(svg: SafeString) -> SafeString:
    # Wide routes scroll inside the page instead of stretching it.
    return format_html('<div class="baton-diagram-box">{}</div>', svg)


def route_box(version: PolicyVersion, *, marks: dict[int, StageMark] | None = None, title: str = "") -> str:
    """A version's stages as a diagram; a document that no longer reads says so instead."""
    try:
        policy = version.policy
    except PolicyError as exc:
        return "The document cannot be read: " + "; ".join(exc.problems)
    return diagram_box(policy_svg(policy=policy, marks=marks, title=title or f"Approval route of {version}"))


def lifecycle_diagram_svg(current: str | None = None) -> SafeString:
    return lifecycle_svg(
        model=ApprovalRequest, labels=dict(State.choices), open_states=OPEN_STATES, current=current
    )


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def admin_user(request: HttpRequest) -> User:
    # admin_view lets only logged-in staff through, so this is always a real User.
    assert isinstance(request.user, User)
    return request.user


def document_yaml(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
