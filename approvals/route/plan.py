"""The plain values of a request's way through its policy at run time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from approvals.models import RouteChange
from approvals.records import (
    DecisionRecord,
    PolicyMoveRecord,
    RevisionRecord,
    RouteRecord,
    TaskRecord,
    request_sections,
)
from approvals.routing import OUTPUTS
from workflows.models import Handoff, HandoffSpec

if TYPE_CHECKING:
    from django.contrib.auth.models import Group
    from django.db import models

    from accounts.models import User


@dataclass(frozen=True)
class Slot:
    """One place to fill in a stage: a person ('user:7') or a group ('group:3'); for a task
    of a parallel group, `stage` names the task (its handoff's stage)."""

    key: str
    user: User | None = None
    group: Group | None = None
    stage: str = ""

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.display_name
        return f"group {self.group}"


@dataclass
class StageEntry:
    """Where a request lands when it (re-)enters its route at some stage."""

    index: int | None  # None: past the last stage, i.e. approved
    slots: list[Slot] = field(default_factory=list)  # every slot of the stage
    waiting: list[Slot] = field(default_factory=list)  # those still to decide: their handoffs open
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (stage, why)
    met: list[str] = field(default_factory=list)
    failed: bool = False
    note: str = ""
    # Whether the last stage passed on the way was a task: past the end, the request is
    # then fulfilled (its work is done), else approved.
    after_task: bool = False


@dataclass
class RoutePlan:
    """What one lifecycle action does to a request: the change the transition method
    applies, the handoffs to close and open, the side rows to insert (a decision, a
    revision) and what its audit entry says."""

    change: RouteChange
    close: list[Handoff] = field(default_factory=list)
    open: list[HandoffSpec] = field(default_factory=list)
    rows: list[models.Model] = field(default_factory=list)
    decision: DecisionRecord | None = None
    route: RouteRecord | None = None
    revision: RevisionRecord | None = None
    policy: PolicyMoveRecord | None = None
    task: TaskRecord | None = None

    def sections(self) -> dict[str, Any]:
        return request_sections(
            decision=self.decision,
            route=self.route,
            revision=self.revision,
            policy=self.policy,
            task=self.task,
        )


def route_data(payload: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What conditions and approver rules read: the payload's fields, and the task
    stages' outputs as outputs.<stage>.<field>."""
    return {**payload, OUTPUTS: dict(outputs)}
