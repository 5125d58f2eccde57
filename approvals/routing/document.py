"""Reading a policy document (YAML or JSON, loaded) into a Policy, and writing it back."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from approvals.routing.limits import POLICY_BOUNDS, shape_problem
from approvals.routing.model import (
    APPROVER_KEYS,
    DECISION_ONLY_KEYS,
    MAX_REMINDERS,
    MAX_STAGES,
    NOT_FULFILLED,
    OPERATORS,
    OPTION_KEYS,
    OUTPUTS,
    OVERDUE_ACTIONS,
    PARALLEL_KEYS,
    RULES,
    SLA_CLOCKS,
    STAGE_KEYS,
    STAGE_KINDS,
    STAGE_NAME,
    TASK_ONLY_KEYS,
    TO_REQUESTER,
    TOP_KEYS,
    AllOf,
    AnyOf,
    Approvers,
    Condition,
    Escalation,
    Leaf,
    ParallelGroup,
    Policy,
    PolicyError,
    Stage,
    duration_parse,
    value_text,
)

SCALARS = (str, int, float, bool)
OUTPUT_REF = re.compile(
    r"^outputs\.[a-z0-9][a-z0-9_-]{0,49}\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)


def _keys_text(keys: set[Any]) -> str:
    """Unknown keys, named in order; YAML can make keys of numbers and true/false too."""
    return ", ".join(sorted(str(k) for k in keys))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, SCALARS)


class _Reader:
    """Turns a loaded document into a Policy, collecting every structural problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    def names(self, where: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(where, "must be a list of names")
            return ()
        return tuple(dict.fromkeys(v.strip() for v in value))

    def flag(self, where: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false (got {value_text(value)})")
            return default
        return value

    def condition(self, where: str, raw: Any, depth: int = 0) -> Condition | None:
        if depth > 6:
            self.fail(where, "conditions nest too deeply (at most 6 levels)")
            return None
        if not isinstance(raw, dict):
            self.fail(where, "a condition is {field, op, value} or {all: [...]} or {any: [...]}")
            return None
        if set(raw) in ({"all"}, {"any"}):
            (kind,) = raw
            items = raw[kind]
            if not isinstance(items, list) or not items:
                self.fail(where, f"'{kind}' needs a non-empty list of conditions")
                return None
            parsed = [
                self.condition(f"{where}.{kind}[{i + 1}]", item, depth + 1) for i, item in enumerate(items)
            ]
            if any(p is None for p in parsed):
                return None
            children = tuple(p for p in parsed if p is not None)
            return AllOf(children) if kind == "all" else AnyOf(children)
        unknown = set(raw) - {"field", "op", "value"}
        if unknown:
            self.fail(where, f"unknown key(s) {_keys_text(unknown)} (a condition has field, op, value)")
            return None
        name, op = raw.get("field"), raw.get("op")
        if not isinstance(name, str) or not re.match(
            r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", name
        ):
            self.fail(
                where,
                f"'field' must be a payload field name such as amount or vendor.country (got {value_text(name)})",
            )
            return None
        if op not in OPERATORS:
            self.fail(where, f"'op' must be one of {', '.join(OPERATORS)} (got {value_text(op)})")
            return None
        if "value" not in raw and op != "exists":
            self.fail(where, f"condition on '{name}' has no 'value'")
            return None
        value = raw.get("value", True)
        if op in {"in", "not_in"} and not isinstance(value, list):
            self.fail(where, f"'{op}' needs a list as its value (got {value_text(value)})")
            return None
        if op == "exists" and not isinstance(value, bool):
            self.fail(where, "'exists' takes true or false")
            return None
        if op in {"in", "not_in"}:
            if not all(_is_scalar(v) for v in value):
                self.fail(where, f"the values of '{op}' must be numbers, text or true/false")
                return None
        elif isinstance(value, list):
            # A list compared with eq / contains would never match anything.
            self.fail(where, f"only 'in' and 'not_in' take a list as their value, not '{op}'")
            return None
        elif not _is_scalar(value):
            # null included: a missing field is tested with {op: exists, value: false}.
            self.fail(where, "a condition's value must be a number, text, true/false or a list of them")
            return None
        return Leaf(field=name, op=op, value=tuple(value) if isinstance(value, list) else value)

    def people(self, where: str, key: str, raw: Any) -> Approvers:
        """A stage's approvers (a decision's) or holders (a task's)."""
        if not isinstance(raw, dict):
            self.fail(
                where, f"'{key}' must name users, groups, requester_manager or team_manager (or from_output)"
            )
            return Approvers()
        bad = set(raw) - APPROVER_KEYS
        if bad:
            self.fail(where, f"unknown {key.removesuffix('s')} key(s) {_keys_text(bad)}")
        from_output = raw.get("from_output", "")
        if from_output and (not isinstance(from_output, str) or not OUTPUT_REF.match(from_output)):
            self.fail(
                where,
                f"{key}.from_output must read a task's output as outputs.<stage>.<field> (got {value_text(from_output)})",
            )
            from_output = ""
        return Approvers(
            users=self.names(f"{where}: {key}.users", raw.get("users")),
            groups=self.names(f"{where}: {key}.groups", raw.get("groups")),
            requester_manager=self.flag(
                f"{where}: {key}.requester_manager", raw.get("requester_manager"), False
            ),
            team_manager=self.flag(f"{where}: {key}.team_manager", raw.get("team_manager"), False),
            from_output=from_output or "",
        )

    def outputs(self, where: str, raw: Any) -> dict[str, Any] | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or raw.get("type", "object") != "object":
            self.fail(where, "'outputs' must be a JSON Schema of type object (the fields the task hands on)")
            return None
        try:
            Draft202012Validator.check_schema(raw)
        except SchemaError as exc:
            at = "/".join(str(p) for p in exc.absolute_path) or "the schema"
            self.fail(where, f"'outputs' is not a valid JSON Schema ({at}: {exc.message})")
            return None
        return raw

    def stage(self, index: int, raw: Any, group: ParallelGroup | None = None) -> Stage | None:
        where = f"stage {index}"
        if not isinstance(raw, dict):
            self.fail(where, "must be a mapping with at least name and approvers")
            return None
        name = raw.get("name")
        if not isinstance(name, str) or not STAGE_NAME.match(name):
            self.fail(where, f"'name' must be lower-case letters, digits, - or _ (got {value_text(name)})")
            return None
        where = f"stage {index} '{name}'"
        problems_before = len(self.problems)
        unknown = set(raw) - STAGE_KEYS
        if unknown:
            self.fail(where, f"unknown key(s) {_keys_text(unknown)}")
        kind = raw.get("type", "decision")
        if kind not in STAGE_KINDS:
            self.fail(where, f"'type' must be decision or task (got {value_text(kind)})")
            return None
        misplaced = set(raw) & (DECISION_ONLY_KEYS if kind == "task" else TASK_ONLY_KEYS)
        if misplaced:
            other = "a decision" if kind == "task" else "a task"
            self.fail(where, f"{_keys_text(misplaced)} belong(s) to {other} stage, not to a {kind}")
        if group is not None and kind != "task":
            self.fail(where, "only task stages run in parallel")
        key = "holders" if kind == "task" else "approvers"
        approvers = self.people(where, key, raw.get(key))
        rule = raw.get("rule", "any")
        if rule not in RULES:
            self.fail(where, f"'rule' must be one of {', '.join(RULES)} (got {value_text(rule)})")
        quorum = raw.get("quorum")
        if rule == "quorum":
            if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 1:
                self.fail(
                    where,
                    f"rule quorum needs 'quorum': a whole number of at least 1 (got {value_text(quorum)})",
                )
                quorum = None
        elif quorum is not None:
            self.fail(where, f"'quorum' only applies to rule quorum (this stage's rule is {rule})")
            quorum = None
        veto = self.flag(f"{where}: veto", raw.get("veto"), True)
        if rule == "all" and not veto:
            self.fail(where, "'veto: false' has no meaning with rule all: every approver must say yes")
        condition = self.condition(f"{where}: when", raw["when"]) if raw.get("when") is not None else None
        sla = None
        if raw.get("sla") is not None:
            sla = duration_parse(raw["sla"])
            if sla is None:
                self.fail(
                    where,
                    f"'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got {value_text(raw['sla'])})",
                )
        sla_clock = raw.get("sla_clock", "calendar")
        if sla_clock not in SLA_CLOCKS:
            self.fail(where, f"'sla_clock' must be calendar or working (got {value_text(sla_clock)})")
            sla_clock = "calendar"
        remind_at = self.reminders(where, raw.get("remind_at"))
        on_overdue = raw.get("on_overdue", "")
        if on_overdue and on_overdue not in OVERDUE_ACTIONS:
            self.fail(
                where,
                f"'on_overdue' must be one of {', '.join(OVERDUE_ACTIONS)} (got {value_text(on_overdue)})",
            )
            on_overdue = ""
        if on_overdue in {"approve", "reject"} and kind == "task":
            self.fail(where, f"'on_overdue: {on_overdue}' decides a decision stage; a task cannot be")
        if (sla_clock != "calendar" or remind_at or on_overdue) and sla is None and raw.get("sla") is None:
            self.fail(where, "'sla_clock', 'remind_at' and 'on_overdue' need an 'sla'")
        if on_overdue == "reassign" and raw.get("escalate_to") is None:
            self.fail(where, "'on_overdue: reassign' needs 'escalate_to': whom to hand the work to")
        escalation = None
        if raw.get("escalate_to") is not None:
            target = raw["escalate_to"]
            if (
                not isinstance(target, dict)
                or len(target) != 1
                or next(iter(target)) not in {"user", "group"}
                or not isinstance(next(iter(target.values())), str)
                or not next(iter(target.values())).strip()
            ):
                self.fail(where, "'escalate_to' must be {user: name} or {group: name}")
            else:
                escalation = Escalation(**{k: v.strip() for k, v in target.items()})
        description = raw.get("description", "")
        if not isinstance(description, str):
            self.fail(where, "'description' must be text")
            description = ""
        if_not_done = raw.get("if_not_done", TO_REQUESTER)
        if not isinstance(if_not_done, str) or not (
            if_not_done in {TO_REQUESTER, NOT_FULFILLED} or STAGE_NAME.match(if_not_done)
        ):
            self.fail(
                where,
                "'if_not_done' must be requester, not_fulfilled or the name of an earlier task stage "
                f"(got {value_text(if_not_done)})",
            )
            if_not_done = TO_REQUESTER
        distinct_from = self.names(f"{where}: distinct_from", raw.get("distinct_from"))
        outputs = self.outputs(where, raw.get("outputs")) if kind == "task" else None
        if len(self.problems) > problems_before:
            return None
        return Stage(
            name=name,
            approvers=approvers,
            rule=str(rule),
            quorum=quorum,
            veto=veto,
            condition=condition,
            sla=sla,
            escalate_to=escalation,
            sla_clock=str(sla_clock),
            remind_at=remind_at,
            on_overdue=str(on_overdue),
            description=description,
            kind=str(kind),
            outputs=outputs,
            if_not_done=if_not_done,
            distinct_from=distinct_from,
            group=group,
        )

    def reminders(self, where: str, raw: Any) -> tuple[float, ...]:
        """`remind_at`: fractions of the SLA (between 0 and 1), e.g. [0.5, 0.9]."""
        if raw is None:
            return ()
        if (
            not isinstance(raw, list)
            or len(raw) > MAX_REMINDERS
            or not all(isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1 for f in raw)
        ):
            self.fail(
                where,
                f"'remind_at' must list up to {MAX_REMINDERS} fractions of the SLA between 0 and 1, "
                f"e.g. [0.5, 0.9] (got {value_text(raw)})",
            )
            return ()
        return tuple(sorted({float(f) for f in raw}))

    def parallel(self, index: int, raw: Any) -> list[Stage | None]:
        """A group of task stages that run at the same time: {name, rule, quorum, stages}."""
        where = f"stage {index}: parallel"
        if not isinstance(raw, dict):
            self.fail(where, "must be a mapping with a name and its stages")
            return [None]
        unknown = set(raw) - PARALLEL_KEYS
        if unknown:
            self.fail(where, f"unknown key(s) {_keys_text(unknown)}")
        name = raw.get("name")
        if not isinstance(name, str) or not STAGE_NAME.match(name):
            self.fail(where, f"'name' must be lower-case letters, digits, - or _ (got {value_text(name)})")
            return [None]
        where = f"stage {index}: parallel '{name}'"
        rule = raw.get("rule", "all")
        quorum = raw.get("quorum")
        members = raw.get("stages")
        if rule not in RULES:
            self.fail(where, f"'rule' must be one of {', '.join(RULES)} (got {value_text(rule)})")
            return [None]
        if not isinstance(members, list) or len(members) < 2:
            self.fail(where, "'stages' must list at least two task stages")
            return [None]
        if rule == "quorum" and (
            not isinstance(quorum, int) or isinstance(quorum, bool) or not 1 <= quorum <= len(members)
        ):
            self.fail(
                where, f"rule quorum needs 'quorum' between 1 and {len(members)} (got {value_text(quorum)})"
            )
            return [None]
        if rule != "quorum" and quorum is not None:
            self.fail(where, f"'quorum' only applies to rule quorum (this group's rule is {rule})")
            return [None]
        group = ParallelGroup(name=name, rule=str(rule), quorum=quorum)
        return [self.stage(index, member, group) for member in members]

    def references(self, stages: list[Stage]) -> None:
        """Where tasks hand back to, and whose decisions a stage must differ from, name
        stages that come earlier (hand-backs: earlier task stages, outside its group)."""
        seen: dict[str, Stage] = {}
        for position, stage in enumerate(stages, start=1):
            where = f"stage {position} '{stage.name}'"
            target = stage.if_not_done
            if stage.is_task and target not in {TO_REQUESTER, NOT_FULFILLED}:
                earlier = seen.get(target)
                if earlier is None or not earlier.is_task or (stage.group and earlier.group == stage.group):
                    self.fail(
                        where,
                        f"'if_not_done: {target}' must name an earlier task stage outside its parallel group "
                        "(or be requester or not_fulfilled)",
                    )
            for other in stage.distinct_from:
                if other not in seen:
                    self.fail(where, f"'distinct_from' names '{other}', which is not an earlier stage")
            seen[stage.name] = stage

    def policy(self, document: Any) -> Policy | None:
        if not isinstance(document, dict):
            self.fail("", "a policy is a mapping with a list of 'stages'")
            return None
        unknown = set(document) - TOP_KEYS
        if unknown:
            self.fail("", f"unknown top-level key(s) {_keys_text(unknown)}")
        options = document.get("options") or {}
        if not isinstance(options, dict):
            self.fail("options", "must be a mapping")
            options = {}
        bad = set(options) - OPTION_KEYS
        if bad:
            self.fail("options", f"unknown option(s) {_keys_text(bad)}")
        once = self.flag("options.one_decision_per_person", options.get("one_decision_per_person"), True)
        carry = self.flag("options.carry_over_approvals", options.get("carry_over_approvals"), False)
        raw_stages = document.get("stages")
        if not isinstance(raw_stages, list) or not raw_stages:
            self.fail("stages", "a policy needs at least one stage")
            return None
        stages: list[Stage | None] = []
        for i, raw in enumerate(raw_stages):
            if isinstance(raw, dict) and set(raw) == {"parallel"}:
                stages += self.parallel(i + 1, raw["parallel"])
            else:
                stages.append(self.stage(i + 1, raw))
        if len(stages) > MAX_STAGES:
            self.fail("stages", f"at most {MAX_STAGES} stages")
        seen: set[str] = set()
        groups: set[str] = set()
        for i, stage in enumerate(stages):
            if stage is not None:
                if stage.name in seen:
                    self.fail(f"stage {i + 1} '{stage.name}'", "another stage has the same name")
                if stage.name == OUTPUTS:
                    self.fail(f"stage {i + 1} '{stage.name}'", "'outputs' is a reserved name")
                seen.add(stage.name)
                if stage.group is not None:
                    groups.add(stage.group.name)
        for name in groups & seen:
            self.fail("stages", f"'{name}' names both a parallel group and a stage")
        if self.problems:
            return None
        self.references([s for s in stages if s is not None])
        if self.problems:
            return None
        return Policy(
            stages=tuple(s for s in stages if s is not None),
            one_decision_per_person=once,
            carry_over_approvals=carry,
        )


def policy_parse(document: Any) -> Policy:
    """Read a loaded policy document; raises PolicyError listing every structural problem.

    A document beyond POLICY_BOUNDS (too large, too deeply nested, values JSON does not
    have) is refused first, in one line, before anything else reads it.
    """
    too_big = shape_problem(document, POLICY_BOUNDS)
    if too_big:
        raise PolicyError([too_big])
    reader = _Reader()
    policy = reader.policy(document)
    if policy is None:
        raise PolicyError(reader.problems or ["the policy could not be read"])
    return policy
