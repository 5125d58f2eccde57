"""The JSON the API answers with: built from the selectors' reads, never from a template."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from approvals.actions import Action, action_done
from approvals.selectors.api import RequestDetail, payload_digest

if TYPE_CHECKING:
    from accounts.models import User
    from approvals.models import ApprovalRequest
    from workflows.models import AuditEntry, Handoff


def person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "name": str(user)}


def request_summary(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "reference": request.reference,
        "type": request.request_type.slug,
        "title": request.title,
        "state": request.state,
        "version": request.version,
        "requester": person(request.requester),
        "created_at": request.created_at,
        "updated_at": request.updated_at,
        "expires_at": request.expires_at,
    }


def handoff_json(handoff: Handoff) -> dict[str, Any]:
    return {
        "id": handoff.pk,
        "stage": handoff.stage,
        "assignee": person(handoff.assignee),
        "group": handoff.candidate_group.name if handoff.candidate_group else None,
        "opened_at": handoff.opened_at,
        "due_at": handoff.due_at,
        "claimed_at": handoff.claimed_at,
        "closed_at": handoff.closed_at,
        "close_reason": handoff.close_reason or None,
    }


def history_json(entry: AuditEntry) -> dict[str, Any]:
    data = entry.data if isinstance(entry.data, dict) else {}
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "action": entry.action,
        "verb": action_done(entry.action),
        "source": entry.source,
        "target": entry.target,
        "actor": person(entry.actor),
        "on_behalf_of": person(entry.on_behalf_of),
        "system": entry.actor_id is None,
        "via": data.get("via"),
        "comment": entry.comment,
        "created_at": entry.created_at,
        "hash": entry.hash,
    }


def request_representation(detail: RequestDetail) -> dict[str, Any]:
    """The full representation: the request, who holds it, what was decided on which
    revision, its history, and what the caller can do now (or why not)."""
    request = detail.request
    escalate_to = None
    if request.expiry_escalate_user_id or request.expiry_escalate_group_id:
        escalate_to = {
            "user": request.expiry_escalate_user.username if request.expiry_escalate_user else None,
            "group": request.expiry_escalate_group.name if request.expiry_escalate_group else None,
        }
    return {
        **request_summary(request),
        "state_label": request.get_state_display(),
        "description": request.description,
        "payload": request.payload,
        "payload_digest": payload_digest(request),
        "revision": request.revision,
        "submitted_at": request.submitted_at,
        "decided_at": request.decided_at,
        "on_expiry": request.on_expiry,
        "escalate_to": escalate_to,
        "expiry_escalated_at": request.expiry_escalated_at,
        "holders": [handoff_json(h) for h in detail.open_handoffs],
        "decisions": [
            {
                "revision": d.revision,
                "stage": d.stage_name,
                "outcome": d.outcome,
                "principal": person(d.principal),
                "actor": person(d.actor),
                "comment": d.comment,
                "created_at": d.created_at,
            }
            for d in detail.decisions
        ],
        "revisions": [
            {
                "number": r.number,
                "title": r.title,
                "payload": r.payload,
                "diff": r.diff,
                "created_at": r.created_at,
            }
            for r in detail.revisions
        ],
        "history": [history_json(e) for e in detail.entries],
        "actions": [
            {
                "name": o.action.value,
                "label": Action(o.action).label,
                "available": o.allowed,
                "reason": o.reason,
            }
            for o in detail.options
        ],
        "why_not": {"code": detail.why_not.code, "message": detail.why_not.message}
        if detail.why_not
        else None,
    }
