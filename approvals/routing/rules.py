"""Stage rules at run time, and the route a request takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from approvals.routing.model import Outcome, Stage

# --- stage rules at run time -----------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """What has been said in one stage so far, and who could still speak.

    `slots` are the stage's named approvers (a user, a group, a manager: 'user:7',
    'group:3'); `approved_slots` those with an approval. `approvals` counts people who
    approved, `rejections` people who rejected, `undecided` people who may still decide.
    """

    slots: frozenset[str]
    approved_slots: frozenset[str] = frozenset()
    approvals: int = 0
    rejections: int = 0
    undecided: int = 0


def stage_outcome(stage: Stage, tally: Tally) -> Outcome:
    """'met', 'failed' (the request is rejected) or 'pending' for one stage."""
    if stage.rule == "all":
        if tally.rejections:
            return "failed"
        return "met" if tally.slots and tally.slots <= tally.approved_slots else "pending"
    needed = stage.needed
    if tally.approvals >= needed:
        return "met"
    if tally.rejections and (stage.veto or tally.approvals + tally.undecided < needed):
        return "failed"
    if tally.approvals + tally.undecided < needed:
        return "failed"
    return "pending"


# --- simulation --------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteStep:
    """One stage of a simulated route: whether it applies (and why not), who it goes to,
    what it reads (payload fields, and outputs.<stage>.<field> of earlier tasks) and, for
    a task, the outputs it hands on. `depends` says when a condition on outputs is only
    known once the task producing them is done."""

    index: int
    stage: Stage
    applies: bool
    reason: str
    approvers: tuple[str, ...] = ()
    problem: str = ""
    reads: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    depends: str = ""


@dataclass(frozen=True)
class Route:
    steps: tuple[RouteStep, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def applied(self) -> tuple[RouteStep, ...]:
        return tuple(s for s in self.steps if s.applies)

    def describe(self) -> list[str]:
        lines = []
        for step in self.steps:
            head = f"{step.index + 1}. {step.stage.name}"
            if step.stage.is_task:
                head += " (task" + (f", with {step.stage.group.name}" if step.stage.group else "") + ")"
            if not step.applies:
                lines.append(f"{head}: skipped ({step.reason})")
            else:
                who = ", ".join(step.approvers) or "nobody"
                lines.append(
                    f"{head}: {who}; {step.stage.rule_text()}"
                    + (f" — {step.problem}" if step.problem else "")
                    + (f" — {step.depends}" if step.depends else "")
                )
            if any(field.startswith("outputs.") for field in step.reads):
                # A payload field read is named in the skip reasons; what a stage needs from
                # earlier tasks is not known before they are done, so it is said here.
                lines.append(f"   reads {', '.join(step.reads)}")
            if step.produces:
                lines.append(f"   hands on {', '.join(step.produces)}")
        if not self.applied:
            lines.append("every stage is skipped: the request is approved on submission")
        return lines
