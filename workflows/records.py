"""What the engine writes into an audit entry's `data`, typed.

One small builder per kind of entry (`created_data`, `transition_data`, `claim_data`,
`reassign_data`) and one reader (`engine_record`) that turns stored data back into the
same types, so the pages that show entries never guess at dictionaries. Workflows add
their own sections beside these (approvals.records); the JSON shapes are what is hashed
into the chain, so they never change for entries already written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.models import Handoff


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- handoffs as the trail names them ------------------------------------------------------


@dataclass(frozen=True)
class HandoffRef:
    """A handoff as an entry records it: who held it, where in the workflow, due when."""

    id: int | None
    user: int | None
    group: int | None
    stage: str = ""
    slot: str = ""
    due_at: str | None = None  # as stored (ISO 8601), not parsed back
    reason: str = ""  # for a closed handoff: done, superseded, reassigned

    @classmethod
    def opened(cls, handoff: Handoff) -> HandoffRef:
        return cls(
            id=handoff.pk,
            user=handoff.assignee_id,
            group=handoff.candidate_group_id,
            stage=handoff.stage,
            slot=handoff.slot,
            due_at=handoff.due_at.isoformat() if handoff.due_at else None,
        )

    @classmethod
    def closed(cls, handoff: Handoff) -> HandoffRef:
        return cls(
            id=handoff.pk,
            user=handoff.assignee_id,
            group=handoff.candidate_group_id,
            reason=handoff.close_reason,
        )

    def summary_json(self, *, due_at: Any = None) -> dict[str, Any]:
        """The opened / reassigned form: id, stage, slot, user, group, due_at."""
        return {
            "id": self.id,
            "stage": self.stage,
            "slot": self.slot,
            "user": self.user,
            "group": self.group,
            "due_at": due_at,
        }

    def closed_json(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "user": self.user, "group": self.group}

    @classmethod
    def read(cls, raw: Any) -> HandoffRef:
        data = _mapping(raw)
        due = data.get("due_at")
        return cls(
            id=_int_or_none(data.get("id")),
            user=_int_or_none(data.get("user")),
            group=_int_or_none(data.get("group")),
            stage=str(data.get("stage") or ""),
            slot=str(data.get("slot") or ""),
            due_at=due if isinstance(due, str) else None,
            reason=str(data.get("reason") or ""),
        )


@dataclass(frozen=True)
class HandoffsChanged:
    """The handoffs one transition closed and opened."""

    closed: tuple[HandoffRef, ...] = ()
    opened: tuple[HandoffRef, ...] = ()

    @classmethod
    def read(cls, raw: Any) -> HandoffsChanged | None:
        if not isinstance(raw, Mapping):
            return None
        return cls(
            closed=tuple(HandoffRef.read(h) for h in raw.get("closed") or []),
            opened=tuple(HandoffRef.read(h) for h in raw.get("opened") or []),
        )


# --- the kinds of entry the engine writes -----------------------------------------------------


@dataclass(frozen=True)
class CreatedRecord:
    """A new instance: its fields as first saved."""

    fields: Mapping[str, Any]


@dataclass(frozen=True)
class TransitionRecord:
    """A state change: fields it changed ([before, after]), handoffs, whether the system acted."""

    changes: Mapping[str, list[Any]] = field(default_factory=dict)
    handoffs: HandoffsChanged | None = None
    system: bool = False


@dataclass(frozen=True)
class ClaimRecord:
    """A claim or a release: the handoff, the person, the group it came from."""

    handoff: int | None
    user: int | None
    group: int | None


@dataclass(frozen=True)
class ReassignRecord:
    """A reassignment: the handoff closed and its successor."""

    before: HandoffRef
    after: HandoffRef


EngineRecord = CreatedRecord | TransitionRecord | ClaimRecord | ReassignRecord


def created_data(*, fields: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"fields": dict(fields), **(extra or {})}


def transition_data(
    *,
    sections: Mapping[str, Any],
    changes: Mapping[str, list[Any]],
    closed: list[Handoff],
    opened: list[Handoff],
    system: bool,
) -> dict[str, Any]:
    """A transition's data: the workflow's own sections, then what the engine saw happen."""
    data: dict[str, Any] = dict(sections)
    if changes:
        data["changes"] = dict(changes)
    if closed or opened:
        data["handoffs"] = {
            "closed": [HandoffRef.closed(h).closed_json() for h in closed],
            "opened": [HandoffRef.opened(h).summary_json(due_at=h.due_at) for h in opened],
        }
    if system:
        data["system"] = True
    return data


def claim_data(*, handoff: Handoff, user_id: int | None) -> dict[str, Any]:
    return {"handoff": handoff.pk, "user": user_id, "group": handoff.candidate_group_id}


def reassign_data(*, before: Handoff, after: Handoff) -> dict[str, Any]:
    return {
        "from": HandoffRef.opened(before).summary_json(due_at=before.due_at),
        "to": HandoffRef.opened(after).summary_json(due_at=after.due_at),
    }


def engine_record(*, kind: str, action: str, data: Any) -> EngineRecord | None:
    """The engine's part of an entry's data, typed; None for kinds it does not write."""
    raw = _mapping(data)
    if kind == "created":
        return CreatedRecord(fields=_mapping(raw.get("fields")))
    if kind == "transition":
        changes = {str(k): list(v) for k, v in _mapping(raw.get("changes")).items() if isinstance(v, list)}
        return TransitionRecord(
            changes=changes,
            handoffs=HandoffsChanged.read(raw.get("handoffs")),
            system=raw.get("system") is True,
        )
    if kind == "handoff" and action == "reassign":
        return ReassignRecord(before=HandoffRef.read(raw.get("from")), after=HandoffRef.read(raw.get("to")))
    if kind == "handoff":
        return ClaimRecord(
            handoff=_int_or_none(raw.get("handoff")),
            user=_int_or_none(raw.get("user")),
            group=_int_or_none(raw.get("group")),
        )
    return None
