"""Submit and resubmit: a requester sends a request (again) into its route.

Who may: the requester — to submit, also someone allowed to submit requests of the type.

What it does: submission routes a draft from the first stage of the type's current,
published policy, with its payload checked against the type's schema; the request keeps
that policy version. Resubmission (after a change request) records a new revision with
what changed and routes it again from the first stage of the version it follows;
approvals of earlier revisions count again only where the policy carries them over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from approvals.actions import Action
from approvals.lifecycle.base import RequestAction, RequestStep, inactive_refusal
from approvals.models import (
    TITLE_MAX,
    ApprovalRequest,
    PolicyVersion,
    RequestRevision,
    RequestType,
    RevisionContent,
    RouteChange,
)
from approvals.policies import is_requester, may_submit_type
from approvals.records import RevisionRecord
from approvals.route import RoutePlan, entry_change, route_enter
from approvals.schemas import payload_errors
from workflows import errors, sql
from workflows.models import WorkflowEffects

RESUBMIT_FIELDS = ("title", "description", "payload")


def current_policy(request: ApprovalRequest) -> PolicyVersion:
    """The published policy version new submissions of the request's type follow, as the
    database says now (one statement; never a type object read before a new version was
    published). Plain SQL: through the ORM, building this read cost a tenth of a
    submission's CPU (bench/peer's profile)."""
    db = sql.db_of()
    types = sql.table_of(RequestType, db).name
    statement = f"id = (SELECT current_policy_id FROM {types} WHERE id = %s) AND status = %s"  # noqa: S608  # nosec B608  # the table name comes from model metadata, quoted; values are parameters
    found = sql.rows_select(
        PolicyVersion, where=statement, params=[request.request_type_id, PolicyVersion.Status.PUBLISHED.value]
    )
    if not found:
        message = f"{request.request_type} has no published approval policy yet; ask an administrator."
        raise errors.InvalidInput(message, field_errors={"request_type": [message]})
    return found[0]


def route_from_start(
    step: RequestStep, *, version: PolicyVersion, payload: Mapping[str, Any], revision: int
) -> RoutePlan:
    """(Re-)enter the route of `version` from its first stage with `payload` as `revision`."""
    request = step.instance
    policy = version.policy
    # A new submission or revision starts the route afresh: no task is done yet, and
    # nothing handed on by the tasks of an earlier revision stands.
    entry = route_enter(
        request=request, policy=policy, payload=payload, revision=revision, decisions=step.facts.decisions
    )
    if entry.failed:
        # Only approvals carried over count at (re)submission; a stage they leave out of
        # reach (its people already spoke for someone else) is no verdict on the request.
        assert entry.index is not None
        message = (
            f"Stage '{policy.stages[entry.index].name}' of the {request.request_type} policy can no longer "
            "be met by the people left to decide it. Ask an administrator."
        )
        raise errors.TransitionNotAllowed(message)
    change, specs, route = entry_change(entry=entry, policy=policy, version=version)
    change = dataclasses.replace(change, outputs={})
    return RoutePlan(change=change, close=list(step.facts.open_handoffs), open=specs, route=route)


class Submit(RequestAction):
    action = Action.SUBMIT

    def allowed(self, step: RequestStep) -> bool:
        user = step.principal
        return (
            user is not None
            and is_requester(step.instance, user)
            and may_submit_type(user, step.instance.request_type)
        )

    def refusal(self, step: RequestStep) -> str:
        user = step.principal
        inactive = inactive_refusal(user)
        if inactive or user is None:
            return inactive or ""
        if step.instance.requester_id == user.pk:
            return f"You may not submit {step.instance.request_type} requests."
        return "Only the requester can do this."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request = step.instance
        version = current_policy(request)
        problems = payload_errors(schema=request.request_type.payload_schema, payload=request.payload)
        if problems:
            raise errors.InvalidInput("Some fields need attention.", field_errors=problems)
        step.plan = route_from_start(
            step, version=version, payload=request.payload, revision=request.revision
        )
        return {"change": step.plan.change}


class Resubmit(RequestAction):
    """Takes `title`, `description` and `payload` (each optional: what is left out stays)."""

    action = Action.RESUBMIT

    def allowed(self, step: RequestStep) -> bool:
        return step.principal is not None and is_requester(step.instance, step.principal)

    def refusal(self, step: RequestStep) -> str:
        return inactive_refusal(step.principal) or "Only the requester can do this."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request = step.instance
        assert step.actor is not None
        title, description, payload = content_checked(request, step.data, what="resubmission")
        version = request.policy_version
        assert version is not None
        number = request.revision + 1
        diff = revision_diff(
            before={"title": request.title, "description": request.description, "payload": request.payload},
            after={"title": title, "description": description, "payload": payload},
        )
        plan = route_from_start(step, version=version, payload=payload, revision=number)
        content = RevisionContent(number=number, title=title, description=description, payload=payload)
        plan.change = dataclasses.replace(plan.change, revision=content)
        plan.rows = [
            RequestRevision(
                request=request,
                number=number,
                title=title,
                description=description,
                payload=payload,
                diff=diff,
                created_by=step.actor,
            )
        ]
        plan.revision = RevisionRecord(number=number, diff=tuple(diff))
        step.plan = plan
        return {"change": plan.change}


def content_checked(request: ApprovalRequest, data: Mapping[str, Any], *, what: str) -> tuple[str, str, Any]:
    """The title, description and payload `data` gives the request (what it leaves out
    stays as it is), checked; InvalidInput naming each bad field otherwise."""
    field_errors: dict[str, list[str]] = {}
    for name in sorted(set(data) - set(RESUBMIT_FIELDS)):
        field_errors[name] = [f"This field cannot be changed on {what}."]
    title = request.title
    if "title" in data:
        title = str(data["title"] or "").strip()
        if not title:
            field_errors["title"] = ["A title is required."]
        elif len(title) > TITLE_MAX:
            field_errors["title"] = [f"At most {TITLE_MAX} characters (got {len(title)})."]
    description = str(data.get("description") or "") if "description" in data else request.description
    payload = data.get("payload", request.payload)
    field_errors.update(payload_errors(schema=request.request_type.payload_schema, payload=payload))
    if field_errors:
        raise errors.InvalidInput(f"The {what} is invalid.", field_errors=field_errors)
    return title, description, payload


class Edit(RequestAction):
    """A draft's requester changes what it says before submitting it. Takes `title`,
    `description` and `payload` (each optional). The draft's first revision follows
    (it is what the request said when submitted); the audit entry says what changed."""

    action = Action.EDIT

    def allowed(self, step: RequestStep) -> bool:
        return step.principal is not None and is_requester(step.instance, step.principal)

    def refusal(self, step: RequestStep) -> str:
        return inactive_refusal(step.principal) or "Only the requester can edit a draft."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request = step.instance
        if step.actor is None or step.actor.pk != request.requester_id:
            # Drafts are nobody else's business, not even a delegate's.
            raise errors.Forbidden("Only the requester can edit a draft.")
        title, description, payload = content_checked(request, step.data, what="draft")
        diff = revision_diff(
            before={"title": request.title, "description": request.description, "payload": request.payload},
            after={"title": title, "description": description, "payload": payload},
        )
        content = RevisionContent(
            number=request.revision, title=title, description=description, payload=payload
        )
        change = RouteChange(
            target=request.state,
            policy_version=request.policy_version,
            stage_index=request.stage_index,
            stage_slots=list(request.stage_slots or []),
            revision=content,
        )
        step.plan = RoutePlan(
            change=change, revision=RevisionRecord(number=request.revision, diff=tuple(diff))
        )
        return {"change": change}

    def effects(self, step: RequestStep) -> WorkflowEffects:
        plan = self.plan_of(step)
        content = plan.change.revision
        assert content is not None
        first = RequestRevision.objects.get(request=step.instance, number=content.number)
        first.title, first.description, first.payload = content.title, content.description, content.payload
        return WorkflowEffects(
            updated=[(first, ["title", "description", "payload"])], audit_data=plan.sections()
        )


def revision_diff(*, before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed between two revisions: title, description and each payload field."""
    changes = [
        {"field": name, "before": before[name], "after": after[name]}
        for name in ("title", "description")
        if before[name] != after[name]
    ]
    old, new = before["payload"] or {}, after["payload"] or {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changes.append({"field": f"payload.{key}", "before": old.get(key), "after": new.get(key)})
    return changes
