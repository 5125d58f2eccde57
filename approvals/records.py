"""What an audit entry of a request says, typed: decisions, route changes, revisions and
policy moves, beside the engine's part (workflows.records).

The lifecycle builds these (`to_json`) into the entry's data; the request page, the
route, notifications and the auditors' pages read them back (`request_record`) as the
same types. The JSON shapes are hashed into the chain: never change them for entries
already written, add new keys instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.models import AuditEntry
from workflows.records import EngineRecord, TransitionRecord, engine_record


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class DecisionRecord:
    """One person's say in a stage, and what it did to the stage (met, failed, pending)."""

    stage: str
    outcome: str
    revision: int
    slot: str
    stage_outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stage": self.stage,
            "outcome": self.outcome,
            "revision": self.revision,
            "slot": self.slot,
        }
        if self.stage_outcome:
            data["stage_outcome"] = self.stage_outcome
        return data

    @classmethod
    def read(cls, raw: Any) -> DecisionRecord | None:
        data = _mapping(raw)
        if not data.get("stage"):
            return None
        revision = data.get("revision")
        return cls(
            stage=str(data["stage"]),
            outcome=str(data.get("outcome") or ""),
            revision=revision if isinstance(revision, int) else 0,
            slot=str(data.get("slot") or ""),
            stage_outcome=str(data.get("stage_outcome") or ""),
        )


@dataclass(frozen=True)
class SkippedStage:
    stage: str
    reason: str


@dataclass(frozen=True)
class RouteRecord:
    """Where the request went in its route: from which stage to which (None: past the
    last), the stages skipped (and why) or already met on the way, and a note."""

    to: str | None
    came_from: str | None = None
    skipped: tuple[SkippedStage, ...] = ()
    met: tuple[str, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.came_from is not None:
            data["from"] = self.came_from
        data["to"] = self.to
        if self.skipped:
            data["skipped"] = [{"stage": s.stage, "reason": s.reason} for s in self.skipped]
        if self.met:
            data["met"] = list(self.met)
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def read(cls, raw: Any) -> RouteRecord | None:
        if not isinstance(raw, Mapping):
            return None
        skipped = tuple(
            SkippedStage(stage=str(s.get("stage", "")), reason=str(s.get("reason", "")))
            for s in raw.get("skipped") or []
            if isinstance(s, Mapping)
        )
        came_from = raw.get("from")
        to = raw.get("to")
        return cls(
            to=str(to) if to else None,
            came_from=str(came_from) if came_from else None,
            skipped=skipped,
            met=tuple(str(m) for m in raw.get("met") or []),
            note=str(raw.get("note") or ""),
        )


@dataclass(frozen=True)
class RevisionRecord:
    """A resubmission: its number and what changed ([{field, before, after}])."""

    number: int
    diff: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "diff": [dict(d) for d in self.diff]}

    @classmethod
    def read(cls, raw: Any) -> RevisionRecord | None:
        data = _mapping(raw)
        number = data.get("number")
        if not isinstance(number, int):
            return None
        return cls(number=number, diff=tuple(d for d in data.get("diff") or [] if isinstance(d, Mapping)))


@dataclass(frozen=True)
class PolicyMoveRecord:
    """A move between policy versions (ids)."""

    from_version: int | None
    to_version: int | None

    def to_json(self) -> dict[str, Any]:
        return {"from": self.from_version, "to": self.to_version}

    @classmethod
    def read(cls, raw: Any) -> PolicyMoveRecord | None:
        if not isinstance(raw, Mapping):
            return None

        def version(value: Any) -> int | None:
            return value if isinstance(value, int) else None

        return cls(from_version=version(raw.get("from")), to_version=version(raw.get("to")))


@dataclass(frozen=True)
class TaskRecord:
    """A task stage done (with the outputs it handed on) or handed back (to `target`:
    the requester, not_fulfilled, or the earlier task stage to redo). The note or the
    reason is the entry's comment."""

    stage: str
    outcome: str
    outputs: Mapping[str, Any] | None = None
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"stage": self.stage, "outcome": self.outcome}
        if self.outputs is not None:
            data["outputs"] = dict(self.outputs)
        if self.target:
            data["target"] = self.target
        return data

    @classmethod
    def read(cls, raw: Any) -> TaskRecord | None:
        data = _mapping(raw)
        if not data.get("stage"):
            return None
        outputs = data.get("outputs")
        return cls(
            stage=str(data["stage"]),
            outcome=str(data.get("outcome") or ""),
            outputs=outputs if isinstance(outputs, Mapping) else None,
            target=str(data.get("target") or ""),
        )


@dataclass(frozen=True)
class RequestRecord:
    """Everything one audit entry of a request says, typed."""

    engine: EngineRecord | None
    decision: DecisionRecord | None = None
    route: RouteRecord | None = None
    revision: RevisionRecord | None = None
    policy: PolicyMoveRecord | None = None
    task: TaskRecord | None = None

    @property
    def transition(self) -> TransitionRecord | None:
        return self.engine if isinstance(self.engine, TransitionRecord) else None


def request_sections(
    *,
    decision: DecisionRecord | None = None,
    route: RouteRecord | None = None,
    revision: RevisionRecord | None = None,
    policy: PolicyMoveRecord | None = None,
    task: TaskRecord | None = None,
) -> dict[str, Any]:
    """A lifecycle action's own part of its entry's data (the engine adds its own)."""
    data: dict[str, Any] = {}
    if decision is not None:
        data["decision"] = decision.to_json()
    if route is not None:
        data["route"] = route.to_json()
    if revision is not None:
        data["revision"] = revision.to_json()
    if policy is not None:
        data["policy"] = policy.to_json()
    if task is not None:
        data["task"] = task.to_json()
    return data


def request_record(entry: AuditEntry) -> RequestRecord:
    data = _mapping(entry.data)
    return RequestRecord(
        engine=engine_record(kind=entry.kind, action=entry.action, data=data),
        decision=DecisionRecord.read(data.get("decision")),
        route=RouteRecord.read(data.get("route")),
        revision=RevisionRecord.read(data.get("revision")),
        policy=PolicyMoveRecord.read(data.get("policy")),
        task=TaskRecord.read(data.get("task")),
    )
