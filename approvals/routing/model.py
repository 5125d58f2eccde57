"""What a policy document means: stages, approvers, conditions, rules (plain values)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.utils.dateparse import parse_duration
from django.utils.duration import duration_iso_string

RULES = ("any", "all", "quorum")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists")
OPERATOR_TEXT = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
    "exists": "is set",
}
NUMERIC_OPERATORS = {"gt", "gte", "lt", "lte"}
STAGE_KEYS = {
    "name",
    "type",
    "description",
    "approvers",
    "holders",
    "rule",
    "quorum",
    "veto",
    "when",
    "sla",
    "sla_clock",
    "remind_at",
    "on_overdue",
    "escalate_to",
    "outputs",
    "if_not_done",
    "distinct_from",
}
DECISION_ONLY_KEYS = {"approvers", "rule", "quorum", "veto"}
TASK_ONLY_KEYS = {"holders", "outputs", "if_not_done"}
APPROVER_KEYS = {"users", "groups", "requester_manager", "team_manager", "from_output"}
PARALLEL_KEYS = {"name", "rule", "quorum", "stages"}
STAGE_KINDS = ("decision", "task")
# How a stage's SLA is counted: wall-clock time, or working time of the holder's calendar.
SLA_CLOCKS = ("calendar", "working")
# What happens when a stage's SLA runs out: tell the holder's manager, hand the work to
# the stage's escalation target, or decide automatically (as the system, audited).
# An automatic approval happens only where a policy names it here explicitly.
OVERDUE_ACTIONS = ("notify_manager", "reassign", "reject", "approve")
MAX_REMINDERS = 5
# Where a task that cannot be done goes: back to the requester, to the end of the request,
# or (any other value) to the named earlier task stage.
TO_REQUESTER = "requester"
NOT_FULFILLED = "not_fulfilled"
# Conditions and approver rules read a task's outputs as outputs.<stage>.<field>.
OUTPUTS = "outputs"
OPTION_KEYS = {"one_decision_per_person", "carry_over_approvals"}
TOP_KEYS = {"request_type", "name", "description", "options", "stages"}
STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
DURATION = re.compile(r"^(?:([0-9]{1,7})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,11})m)?$")
# No SLA is longer (and a due date computed from a longer one would overflow a datetime).
MAX_DURATION = timedelta(days=3660)
DURATION_MAX_TEXT = 64
MAX_STAGES = 20
MAX_CONDITION_TERMS = 256  # beyond this the reachability analysis gives up and assumes reachable

Outcome = Literal["met", "failed", "pending"]


# --- the document's meaning -------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    value: Any

    def describe(self) -> str:
        if self.op == "exists":
            return f"{self.field} {'is set' if self.value else 'is not set'}"
        return f"{self.field} {OPERATOR_TEXT[self.op]} {value_text(self.value)}"


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]

    def describe(self) -> str:
        return " and ".join(_grouped(c) for c in self.items)


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]

    def describe(self) -> str:
        return " or ".join(_grouped(c) for c in self.items)


Condition = Leaf | AllOf | AnyOf


def _grouped(condition: Condition) -> str:
    text = condition.describe()
    return f"({text})" if isinstance(condition, AllOf | AnyOf) and len(condition.items) > 1 else text


@dataclass(frozen=True)
class Approvers:
    """Who fills a stage: named users and groups, the requester's managers, and people
    named by an earlier task's output (`from_output`: 'outputs.<stage>.<field>', holding a
    user name or a list of them)."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    requester_manager: bool = False
    team_manager: bool = False
    from_output: str = ""

    @property
    def is_empty(self) -> bool:
        return not (
            self.users or self.groups or self.requester_manager or self.team_manager or self.from_output
        )

    def describe(self) -> str:
        parts = [*self.users, *(f"group {g}" for g in self.groups)]
        if self.requester_manager:
            parts.append("the requester's manager")
        if self.team_manager:
            parts.append("the requester's team manager")
        if self.from_output:
            parts.append(f"whoever {self.from_output} names")
        return ", ".join(parts) or "nobody"


@dataclass(frozen=True)
class ParallelGroup:
    """Task stages that run at the same time; the next step starts once `rule` is met
    over the group's stages that apply (any one, all, or a quorum of them)."""

    name: str
    rule: str = "all"
    quorum: int | None = None

    def needed(self, applicable: int) -> int:
        if self.rule == "any":
            return min(1, applicable)
        if self.rule == "quorum" and self.quorum is not None:
            return min(self.quorum, applicable)
        return applicable

    def rule_text(self) -> str:
        if self.rule == "quorum":
            return f"{self.quorum} of them done"
        return "any one done" if self.rule == "any" else "all of them done"


@dataclass(frozen=True)
class Escalation:
    user: str = ""
    group: str = ""

    def describe(self) -> str:
        return self.user or f"group {self.group}"


@dataclass(frozen=True)
class Stage:
    """One step of a route: a decision (approve / reject / ask for changes, by `rule`) or a
    task (a piece of work one of its holders completes with `outputs` matching that JSON
    Schema, or hands back as `if_not_done` says). `approvers` are a task's holders."""

    name: str
    approvers: Approvers
    rule: str = "any"
    quorum: int | None = None
    veto: bool = True
    condition: Condition | None = None
    sla: timedelta | None = None
    escalate_to: Escalation | None = None
    sla_clock: str = "calendar"
    remind_at: tuple[float, ...] = ()
    on_overdue: str = ""
    description: str = ""
    kind: str = "decision"
    outputs: Mapping[str, Any] | None = None
    if_not_done: str = TO_REQUESTER
    distinct_from: tuple[str, ...] = ()
    group: ParallelGroup | None = None

    @property
    def is_task(self) -> bool:
        return self.kind == "task"

    def rule_text(self) -> str:
        if self.is_task:
            return "one of them does it"
        if self.rule == "quorum":
            text = f"{self.quorum} of them"
        elif self.rule == "all":
            text = "all of them"
        else:
            text = "any one of them"
        return text + ("" if self.veto else ", no veto")

    @property
    def overdue_action(self) -> str:
        """What its SLA running out does: as the policy says; by default a hand-over to
        the escalation target where it names one, else a word to the holder's manager."""
        if self.on_overdue:
            return self.on_overdue
        return "reassign" if self.escalate_to is not None else "notify_manager"

    @property
    def needed(self) -> int:
        """Approvals the rule needs (for 'all', the number of slots decides; see stage_outcome)."""
        return self.quorum or 1


@dataclass(frozen=True)
class Policy:
    stages: tuple[Stage, ...]
    one_decision_per_person: bool = True
    carry_over_approvals: bool = False

    def stage_index(self, name: str) -> int | None:
        return next((i for i, s in enumerate(self.stages) if s.name == name), None)

    def step_of(self, index: int) -> tuple[int, ...]:
        """The indices of the stages that run together with stage `index`: its parallel
        group's (consecutive in the document), or itself alone."""
        group = self.stages[index].group
        if group is None:
            return (index,)
        first = index
        while first > 0 and self.stages[first - 1].group == group:
            first -= 1
        last = index
        while last + 1 < len(self.stages) and self.stages[last + 1].group == group:
            last += 1
        return tuple(range(first, last + 1))

    def decisions_after(self, index: int) -> bool:
        """Whether a decision stage comes after the step of stage `index`."""
        last = self.step_of(index)[-1]
        return any(not s.is_task for s in self.stages[last + 1 :])

    @property
    def has_tasks(self) -> bool:
        return any(s.is_task for s in self.stages)


class PolicyError(ValueError):
    """The document cannot be read as a policy; `problems` has one clear line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def value_text(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def duration_parse(text: Any) -> timedelta | None:
    """'30m', '4h', '2d', '1d12h' or ISO 8601 ('P2DT4H'); None when it is neither, or not
    more than nothing, or longer than MAX_DURATION (about ten years)."""
    if not isinstance(text, str) or not text.strip() or len(text) > DURATION_MAX_TEXT:
        return None
    value = text.strip()
    match = DURATION.match(value)
    try:
        if match and any(match.groups()):
            days, hours, minutes = (int(g or 0) for g in match.groups())
            result = timedelta(days=days, hours=hours, minutes=minutes)
        else:
            parsed = parse_duration(value) if value.upper().startswith("P") else None
            if parsed is None:
                return None
            result = parsed
    except (OverflowError, ValueError):  # beyond what a timedelta holds
        return None
    return result if timedelta(0) < result <= MAX_DURATION else None


def duration_text(value: timedelta) -> str:
    """'2d', '1d12h', '30m'; ISO 8601 when it is not whole minutes (so it reads back the same)."""
    if value.total_seconds() % 60:
        return duration_iso_string(value)
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return "".join(parts) or "0m"
