"""Approval routing as data: the policy document, its validation, conditions and stage rules.

Pure functions over plain values; nothing here touches the database. The models resolve
names to people through a `Directory` and feed decisions in; this module says what the
document means.

A policy document (YAML or JSON, kept in git or edited in the admin):

    options:
      one_decision_per_person: true   # one person decides once per request revision
      carry_over_approvals: false     # approvals survive a change request
    stages:
      - name: manager
        approvers: {requester_manager: true}
        rule: any                     # any | all | quorum
        sla: 2d                       # 30m, 4h, 2d, 1d12h, or ISO 8601 (P2DT4H)
        sla_clock: working            # calendar (default) | working: the holder's working calendar
        remind_at: [0.5, 0.9]         # reminders to the holder at these fractions of the SLA
        on_overdue: reassign          # notify_manager | reassign | reject | approve (default:
                                      # reassign with escalate_to, else notify_manager)
        escalate_to: {group: managers}
      - name: finance
        when: {field: amount, op: gt, value: 1000}
        approvers: {groups: [finance]}
      - name: committee
        approvers: {users: [pat, quinn, rosa]}
        rule: quorum
        quorum: 2
        veto: false                   # a reject is a vote against, not the end

Approvers are named: `users` (user names), `groups` (group names), `requester_manager`
(the requester's line manager) and `team_manager` (the managers of the requester's teams).
What a rule counts:

- any: one approval from anyone the stage names;
- all: every named approver says yes; a group counts once (any one member speaks for it);
- quorum N: N different people from everyone the stage names (groups count per member).

A reject ends the request when the stage has a veto (the default) or when the rule can no
longer be met; with `veto: false` it is only a vote against. Conditions are structured
(field, operator, value, combined with `all` / `any`); there is no expression language to
evaluate and nothing is ever passed to `eval`.
"""

from approvals.routing.checks import Directory, Person, data_schema, policy_problems
from approvals.routing.conditions import (
    condition_explain,
    condition_holds,
    condition_satisfiable,
    payload_value,
)
from approvals.routing.document import policy_parse
from approvals.routing.model import (
    NOT_FULFILLED,
    OPERATORS,
    OUTPUTS,
    RULES,
    TO_REQUESTER,
    AllOf,
    AnyOf,
    Approvers,
    Condition,
    Escalation,
    Leaf,
    Outcome,
    ParallelGroup,
    Policy,
    PolicyError,
    Stage,
    duration_parse,
    duration_text,
)
from approvals.routing.rules import Route, RouteStep, Tally, stage_outcome

__all__ = [
    "NOT_FULFILLED",
    "OPERATORS",
    "OUTPUTS",
    "RULES",
    "TO_REQUESTER",
    "AllOf",
    "AnyOf",
    "Approvers",
    "Condition",
    "Directory",
    "Escalation",
    "Leaf",
    "Outcome",
    "ParallelGroup",
    "Person",
    "Policy",
    "PolicyError",
    "Route",
    "RouteStep",
    "Stage",
    "Tally",
    "condition_explain",
    "condition_holds",
    "condition_satisfiable",
    "data_schema",
    "duration_parse",
    "duration_text",
    "payload_value",
    "policy_parse",
    "policy_problems",
    "stage_outcome",
]
