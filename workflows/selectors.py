"""Reads that serve lists and pages. Each runs a fixed number of queries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from workflows.models import AuditEntry, Handoff, WorkflowModel
from workflows.permissions import user_group_ids

if TYPE_CHECKING:
    from accounts.models import User


def handoffs_open_for_user(
    *,
    user: User,
    model: type[WorkflowModel] | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Handoff]:
    """Open handoffs `user` holds or may claim (offered unclaimed to one of their groups),
    oldest first, paged by keyset on id. Uses the two partial 'open' indexes."""
    groups = user_group_ids(user)
    query = Handoff.objects.filter(
        Q(assignee=user) | Q(assignee__isnull=True, candidate_group_id__in=groups),
        closed_at__isnull=True,
    )
    if model is not None:
        query = query.filter(content_type=ContentType.objects.get_for_model(model))
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return list(query.select_related("assignee", "candidate_group").order_by("id")[:limit])


def handoffs_for_instance(instance: WorkflowModel) -> list[Handoff]:
    """Every handoff of one instance, open and closed, in the order they were opened."""
    return list(
        Handoff.objects.for_instance(instance)
        .select_related("assignee", "candidate_group", "opened_by", "closed_by")
        .order_by("id")
    )


def audit_entries_for_instance(instance: WorkflowModel) -> list[AuditEntry]:
    """One instance's chain, in order, with the people named in it."""
    return list(
        AuditEntry.objects.for_instance(instance).select_related("actor", "on_behalf_of").order_by("seq")
    )
