"""Role groups and the permissions each role carries.

A role is a Django group whose permissions are kept in code, so that every
installation agrees on what "auditor" means. Approver groups are ordinary groups
(any number of them, e.g. "finance") that also carry the approver permissions.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission

REQUESTERS = "requesters"
APPROVERS = "approvers"
MANAGERS = "managers"
AUDITORS = "auditors"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REQUESTERS: ["approvals.add_approvalrequest"],
    APPROVERS: ["approvals.decide_approvalrequest"],
    MANAGERS: [
        # Managers approve their reports' requests where a policy names the requester's manager.
        "approvals.decide_approvalrequest",
        "approvals.cancel_approvalrequest",
        "approvals.view_all_approvalrequest",
        "workflows.reassign_handoff",
    ],
    AUDITORS: ["workflows.view_auditentry", "approvals.view_all_approvalrequest"],
}


def _permission(dotted: str) -> Permission | None:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()


def roles_sync() -> dict[str, Group]:
    """Create the role groups and give each exactly its permissions. Idempotent."""
    groups: dict[str, Group] = {}
    for name, dotted_perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = [p for p in (_permission(d) for d in dotted_perms) if p is not None]
        group.permissions.add(*perms)
        groups[name] = group
    return groups


def roles_sync_after_migrate(**kwargs: Any) -> None:
    # Runs after every migrate; permissions exist by then for all migrated apps.
    roles_sync()
