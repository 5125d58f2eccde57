"""Reading a policy document (YAML or JSON, loaded) into a Policy, and writing it back."""

from __future__ import annotations

import re
from typing import Any

from approvals.routing.limits import POLICY_BOUNDS, shape_problem
from approvals.routing.model import (
    APPROVER_KEYS,
    MAX_STAGES,
    OPERATORS,
    OPTION_KEYS,
    RULES,
    STAGE_KEYS,
    STAGE_NAME,
    TOP_KEYS,
    AllOf,
    AnyOf,
    Approvers,
    Condition,
    Escalation,
    Leaf,
    Policy,
    PolicyError,
    Stage,
    duration_parse,
    value_text,
)

SCALARS = (str, int, float, bool)


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

    def stage(self, index: int, raw: Any) -> Stage | None:
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
        approvers_raw = raw.get("approvers")
        approvers = Approvers()
        if not isinstance(approvers_raw, dict):
            self.fail(where, "'approvers' must name users, groups, requester_manager or team_manager")
        else:
            bad = set(approvers_raw) - APPROVER_KEYS
            if bad:
                self.fail(where, f"unknown approver key(s) {_keys_text(bad)}")
            approvers = Approvers(
                users=self.names(f"{where}: approvers.users", approvers_raw.get("users")),
                groups=self.names(f"{where}: approvers.groups", approvers_raw.get("groups")),
                requester_manager=self.flag(
                    f"{where}: approvers.requester_manager", approvers_raw.get("requester_manager"), False
                ),
                team_manager=self.flag(
                    f"{where}: approvers.team_manager", approvers_raw.get("team_manager"), False
                ),
            )
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
            description=description,
        )

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
        if len(raw_stages) > MAX_STAGES:
            self.fail("stages", f"at most {MAX_STAGES} stages")
        stages = [self.stage(i + 1, raw) for i, raw in enumerate(raw_stages)]
        seen: set[str] = set()
        for i, stage in enumerate(stages):
            if stage is not None:
                if stage.name in seen:
                    self.fail(f"stage {i + 1} '{stage.name}'", "another stage has the same name")
                seen.add(stage.name)
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
