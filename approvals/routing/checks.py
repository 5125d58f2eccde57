"""Checking a policy before it is published: one clear line per problem."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from approvals.routing.conditions import condition_leaves, condition_satisfiable, leaf_type_problem
from approvals.routing.model import Policy


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


def policy_problems(policy: Policy, *, schema: Mapping[str, Any], directory: Directory) -> list[str]:
    """Every reason not to publish `policy`, one clear line each (empty: fine to publish)."""
    problems: list[str] = []
    for index, stage in enumerate(policy.stages, start=1):
        where = f"stage {index} '{stage.name}'"

        def fail(message: str, where: str = where) -> None:
            problems.append(f"{where}: {message}")

        if stage.approvers.is_empty:
            fail("no approvers: name users, groups, requester_manager or team_manager")
        people: dict[int, Person] = {}
        for username in stage.approvers.users:
            person = directory.user(username)
            if person is None:
                fail(f"user '{username}' does not exist or is not active")
            elif not person.may_decide:
                fail(f"user '{username}' may not decide on requests (not in an approver role)")
            else:
                people[person.id] = person
        for group_name in stage.approvers.groups:
            members = directory.group_members(group_name)
            if members is None:
                fail(f"group '{group_name}' does not exist")
                continue
            deciders = [m for m in members if m.may_decide]
            if not deciders:
                fail(f"group '{group_name}' has no active members who may decide: its approver set is empty")
                continue
            people.update({m.id: m for m in deciders})
        dynamic = int(stage.approvers.requester_manager) + int(stage.approvers.team_manager)
        if stage.rule == "quorum" and stage.quorum is not None:
            # The managers are one person each at most; everyone else is known now.
            most = len(people) + dynamic
            if stage.quorum > most:
                fail(f"quorum {stage.quorum} is larger than its {most} possible approver(s)")
        if stage.condition is not None:
            type_problems = [
                problem
                for problem in (leaf_type_problem(leaf, schema) for leaf in condition_leaves(stage.condition))
                if problem
            ]
            for problem in type_problems:
                fail(problem)
            # A condition of the wrong type is one problem, not also an unreachable stage.
            if not type_problems and not condition_satisfiable(stage.condition, schema):
                fail(f"unreachable: its condition can never be true ({stage.condition.describe()})")
        if stage.escalate_to is not None:
            target = stage.escalate_to
            if target.user and directory.user(target.user) is None:
                fail(f"escalation user '{target.user}' does not exist or is not active")
            if target.group and directory.group_members(target.group) is None:
                fail(f"escalation group '{target.group}' does not exist")
    return problems
