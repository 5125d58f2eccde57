"""Checking a policy before it is published: one clear line per problem."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from approvals.routing.conditions import (
    condition_leaves,
    condition_satisfiable,
    leaf_type_problem,
    schema_field,
    types_of,
)
from approvals.routing.model import OUTPUTS, Policy, Stage


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    may_decide: bool = True


class Directory(Protocol):
    """How the policy's names meet the people of this installation."""

    def user(self, name: str) -> Person | None: ...

    def group_members(self, name: str) -> list[Person] | None:
        """Active members of a group, or None when there is no such group."""
        ...


def data_schema(policy: Policy, index: int, schema: Mapping[str, Any]) -> dict[str, Any]:
    """What stage `index` may read: the payload's fields, and as outputs.<stage>.<field>
    the outputs of the task stages that finish before it (earlier, outside its group).
    No output is required: a task skipped by its condition hands nothing on."""
    own_group = policy.stages[index].group
    produced = {
        stage.name: dict(stage.outputs)
        for stage in policy.stages[:index]
        if stage.is_task and stage.outputs is not None and (own_group is None or stage.group != own_group)
    }
    return {
        **schema,
        "properties": {
            **(schema.get("properties") or {}),
            OUTPUTS: {"type": "object", "properties": produced},
        },
    }


def _reads_output_problem(field: str, readable: Mapping[str, Any]) -> str | None:
    """Why `field` (outputs.<stage>.<field>) is not an output an earlier task produces."""
    if not field.startswith(f"{OUTPUTS}."):
        return None
    if schema_field(readable, field) is None:
        return f"reads '{field}', which no earlier task stage produces (its outputs schema has no such field)"
    return None


def policy_problems(policy: Policy, *, schema: Mapping[str, Any], directory: Directory) -> list[str]:
    """Every reason not to publish `policy`, one clear line each (empty: fine to publish)."""
    problems: list[str] = []
    if OUTPUTS in (schema.get("properties") or {}):
        problems.append(f"payload schema: '{OUTPUTS}' is reserved for the outputs of task stages")
    for index, stage in enumerate(policy.stages, start=1):
        where = f"stage {index} '{stage.name}'"

        def fail(message: str, where: str = where) -> None:
            problems.append(f"{where}: {message}")

        readable = data_schema(policy, index - 1, schema)
        for problem in _people_problems(stage, readable, directory):
            fail(problem)
        people = _people(stage, directory)
        dynamic = int(stage.approvers.requester_manager) + int(stage.approvers.team_manager)
        if stage.rule == "quorum" and stage.quorum is not None and not stage.approvers.from_output:
            # The managers are one person each at most; everyone else is known now.
            most = len(people) + dynamic
            if stage.quorum > most:
                fail(f"quorum {stage.quorum} is larger than its {most} possible approver(s)")
        if stage.condition is not None:
            type_problems = [
                problem
                for problem in (
                    _reads_output_problem(leaf.field, readable) or leaf_type_problem(leaf, readable)
                    for leaf in condition_leaves(stage.condition)
                )
                if problem
            ]
            for problem in type_problems:
                fail(problem)
            # A condition of the wrong type is one problem, not also an unreachable stage.
            if not type_problems and not condition_satisfiable(stage.condition, readable):
                fail(f"unreachable: its condition can never be true ({stage.condition.describe()})")
        if stage.escalate_to is not None:
            target = stage.escalate_to
            if target.user and directory.user(target.user) is None:
                fail(f"escalation user '{target.user}' does not exist or is not active")
            if target.group and directory.group_members(target.group) is None:
                fail(f"escalation group '{target.group}' does not exist")
    return problems


def _people(stage: Stage, directory: Directory) -> dict[int, Person]:
    """The people a stage names who may fill it (deciders, for a decision)."""
    people: dict[int, Person] = {}
    for username in stage.approvers.users:
        person = directory.user(username)
        if person is not None and (stage.is_task or person.may_decide):
            people[person.id] = person
    for group_name in stage.approvers.groups:
        for member in directory.group_members(group_name) or []:
            if stage.is_task or member.may_decide:
                people[member.id] = member
    return people


def _people_problems(stage: Stage, readable: Mapping[str, Any], directory: Directory) -> list[str]:
    """Why the people a stage names cannot fill it: unknown names, empty groups, an output
    that does not name people."""
    found: list[str] = []
    who = "holders" if stage.is_task else "approvers"
    if stage.approvers.is_empty:
        found.append(f"no {who}: name users, groups, requester_manager or team_manager")
    for username in stage.approvers.users:
        person = directory.user(username)
        if person is None:
            found.append(f"user '{username}' does not exist or is not active")
        elif not stage.is_task and not person.may_decide:
            found.append(f"user '{username}' may not decide on requests (not in an approver role)")
    for group_name in stage.approvers.groups:
        members = directory.group_members(group_name)
        if members is None:
            found.append(f"group '{group_name}' does not exist")
        elif not stage.is_task and not any(m.may_decide for m in members):
            found.append(
                f"group '{group_name}' has no active members who may decide: its approver set is empty"
            )
        elif stage.is_task and not members:
            found.append(f"group '{group_name}' has no active members: nobody could do this task")
    source = stage.approvers.from_output
    if source:
        problem = _reads_output_problem(source, readable)
        sub = schema_field(readable, source)
        if problem:
            found.append(problem)
        elif sub is not None and not types_of(sub) & {"string", "array"}:
            found.append(f"{who}.from_output '{source}' must be text (a user name) or a list of user names")
    return found
