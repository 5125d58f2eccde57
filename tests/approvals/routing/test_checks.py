"""Checks before publishing: empty approver sets, unknown people, people who may not decide,
conditions on fields the schema lacks or of the wrong type, quorum larger than the approvers,
and stages whose condition can never be true. One clear line per problem."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.roles import APPROVERS
from approvals.publishing import DatabaseDirectory, document_problems
from approvals.routing import Person, policy_parse, policy_problems
from tests.factories import GroupFactory, UserFactory

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "level": {"enum": [1, 2, 3]},
        "urgent": {"type": "boolean"},
        "purpose": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "anything": {},
        "vendor": {"type": "object", "properties": {"country": {"type": "string"}}},
    },
}


class FakeDirectory:
    """This installation's people as plain data: the checker only asks a Directory."""

    def __init__(self) -> None:
        self.users = {
            "alex": Person(1, "alex"),
            "bea": Person(2, "bea"),
            "carl": Person(3, "carl"),
            "olaf": Person(9, "olaf", may_decide=False),
        }
        self.groups = {
            "finance": [Person(4, "fiona"), Person(5, "fred"), Person(1, "alex")],
            "observers": [Person(9, "olaf", may_decide=False)],
            "empty": [],
        }

    def user(self, name: str) -> Person | None:
        return self.users.get(name)

    def group_members(self, name: str) -> list[Person] | None:
        return self.groups.get(name)


def problems_of(*stages: dict[str, Any], schema: dict[str, Any] | None = None) -> list[str]:
    policy = policy_parse({"stages": list(stages)})
    return policy_problems(policy, schema=SCHEMA if schema is None else schema, directory=FakeDirectory())


def stage(**extra: Any) -> dict[str, Any]:
    return {"name": "review", "approvers": {"users": ["alex"]}, **extra}


def test_a_sound_policy_has_no_problems():
    assert (
        problems_of(
            stage(),
            stage(
                name="finance",
                approvers={"groups": ["finance"], "users": ["carl"]},
                rule="quorum",
                quorum=4,
                when={
                    "all": [
                        {"field": "amount", "op": "gt", "value": 1000},
                        {"field": "currency", "op": "in", "value": ["EUR"]},
                    ]
                },
                escalate_to={"group": "finance"},
            ),
            stage(name="manager", approvers={"requester_manager": True}, escalate_to={"user": "bea"}),
        )
        == []
    )


def test_an_empty_approver_set():
    assert problems_of(stage(approvers={})) == [
        "stage 1 'review': no approvers: name users, groups, requester_manager or team_manager"
    ]


@pytest.mark.parametrize(
    ("approvers", "problem"),
    [
        ({"users": ["nobody"]}, "stage 1 'review': user 'nobody' does not exist or is not active"),
        (
            {"users": ["olaf"]},
            "stage 1 'review': user 'olaf' may not decide on requests (not in an approver role)",
        ),
        ({"groups": ["ghosts"]}, "stage 1 'review': group 'ghosts' does not exist"),
        (
            {"groups": ["empty"]},
            "stage 1 'review': group 'empty' has no active members who may decide: its approver set is empty",
        ),
        (
            {"groups": ["observers"]},
            "stage 1 'review': group 'observers' has no active members who may decide: its approver set is empty",
        ),
    ],
)
def test_approvers_who_cannot_decide(approvers, problem):
    assert problems_of(stage(approvers=approvers)) == [problem]


@pytest.mark.parametrize(
    ("approvers", "quorum", "possible"),
    [
        ({"users": ["alex", "bea"]}, 3, 2),
        # alex is in finance too: people are counted once
        ({"users": ["alex"], "groups": ["finance"]}, 4, 3),
        # each manager is one person at most
        ({"users": ["alex"], "requester_manager": True, "team_manager": True}, 4, 3),
        # people who may not decide do not count
        ({"users": ["alex", "olaf"]}, 2, 1),
    ],
)
def test_a_quorum_larger_than_the_possible_approvers(approvers, quorum, possible):
    problems = problems_of(stage(approvers=approvers, rule="quorum", quorum=quorum))
    assert f"stage 1 'review': quorum {quorum} is larger than its {possible} possible approver(s)" in problems


def test_a_quorum_equal_to_the_approvers_is_fine():
    assert problems_of(stage(approvers={"users": ["alex", "bea"]}, rule="quorum", quorum=2)) == []


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ({"user": "nobody"}, "stage 1 'review': escalation user 'nobody' does not exist or is not active"),
        ({"group": "ghosts"}, "stage 1 'review': escalation group 'ghosts' does not exist"),
    ],
)
def test_an_escalation_target_that_does_not_exist(target, problem):
    assert problems_of(stage(escalate_to=target)) == [problem]


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        (
            {"field": "colour", "op": "eq", "value": "red"},
            "condition on 'colour': the payload schema has no such field",
        ),
        (
            {"field": "vendor.city", "op": "eq", "value": "Lisbon"},
            "condition on 'vendor.city': the payload schema has no such field",
        ),
        (
            {"field": "purpose", "op": "gt", "value": 5},
            "condition 'purpose > 5': 'purpose' is string, so gt cannot compare it",
        ),
        (
            {"field": "urgent", "op": "lte", "value": 1},
            "condition 'urgent ≤ 1': 'urgent' is boolean, so lte cannot compare it",
        ),
        (
            {"field": "amount", "op": "gt", "value": "1000"},
            "condition 'amount > '1000'': 'amount' is a number, the value must be a number",
        ),
        (
            {"field": "amount", "op": "eq", "value": "1000"},
            "condition 'amount = '1000'': 'amount' is number, but '1000' is string",
        ),
        (
            {"field": "currency", "op": "in", "value": ["EUR", 1]},
            "condition 'currency in ['EUR', 1]': 'currency' is string, but 1 is number",
        ),
        (
            {"field": "level", "op": "eq", "value": "1"},
            "condition 'level = '1'': 'level' is number, but '1' is string",
        ),
        (
            {"field": "urgent", "op": "eq", "value": 1},
            "condition 'urgent = 1': 'urgent' is boolean, but 1 is number",
        ),
        (
            {"field": "amount", "op": "contains", "value": 5},
            "condition 'amount contains 5': contains needs a text or list field, 'amount' is number",
        ),
        (
            {"field": "purpose", "op": "contains", "value": 5},
            "condition 'purpose contains 5': 'purpose' is text, the value must be text",
        ),
        (
            {"field": "vendor.country", "op": "eq", "value": 351},
            "condition 'vendor.country = 351': 'vendor.country' is string, but 351 is number",
        ),
    ],
)
def test_a_condition_on_a_missing_field_or_of_the_wrong_type(when, problem):
    assert problems_of(stage(when=when)) == [f"stage 1 'review': {problem}"]


@pytest.mark.parametrize(
    "when",
    [
        {"field": "count", "op": "gte", "value": 2},  # integer compares with numbers
        {"field": "count", "op": "eq", "value": 2.0},
        {"field": "tags", "op": "contains", "value": "x"},
        {"field": "purpose", "op": "contains", "value": "x"},
        {"field": "anything", "op": "gt", "value": 1},  # untyped: anything goes
        {"field": "urgent", "op": "exists", "value": True},
        {"field": "vendor", "op": "exists", "value": True},
        {"field": "urgent", "op": "ne", "value": True},
        {
            "field": "currency",
            "op": "not_in",
            "value": ["EUR", "USD", "GBP"],
        },  # missing currency still qualifies
    ],
)
def test_conditions_that_fit_the_schema(when):
    assert problems_of(stage(when=when)) == []


@pytest.mark.parametrize(
    "when",
    [
        # contradictory ranges
        {"all": [{"field": "amount", "op": "gt", "value": 10}, {"field": "amount", "op": "lt", "value": 5}]},
        {"all": [{"field": "amount", "op": "gt", "value": 5}, {"field": "amount", "op": "lt", "value": 5}]},
        {"all": [{"field": "amount", "op": "gte", "value": 5}, {"field": "amount", "op": "lt", "value": 5}]},
        {"all": [{"field": "amount", "op": "gt", "value": 5}, {"field": "amount", "op": "lte", "value": 5}]},
        # outside the schema's bounds (maximum, minimum, exclusiveMinimum)
        {"field": "amount", "op": "gt", "value": 100000},
        {"field": "count", "op": "lt", "value": 1},
        {"field": "count", "op": "gte", "value": 11},
        {"field": "amount", "op": "lte", "value": 0},
        {"field": "amount", "op": "lt", "value": -3},
        # equality outside the enum
        {"field": "currency", "op": "eq", "value": "JPY"},
        {"field": "currency", "op": "in", "value": ["JPY", "CHF"]},
        {
            "all": [
                {"field": "currency", "op": "eq", "value": "EUR"},
                {"field": "currency", "op": "ne", "value": "EUR"},
            ]
        },
        {
            "all": [
                {"field": "currency", "op": "in", "value": ["EUR", "USD"]},
                {"field": "currency", "op": "not_in", "value": ["EUR", "USD"]},
            ]
        },
        {
            "all": [
                {"field": "currency", "op": "eq", "value": "EUR"},
                {"field": "currency", "op": "eq", "value": "USD"},
            ]
        },
        {
            "all": [
                {"field": "level", "op": "in", "value": [1, 2]},
                {"field": "level", "op": "gt", "value": 2},
            ]
        },
        # set and not set at once
        {
            "all": [
                {"field": "purpose", "op": "exists", "value": True},
                {"field": "purpose", "op": "exists", "value": False},
            ]
        },
        {
            "all": [
                {"field": "purpose", "op": "exists", "value": False},
                {"field": "purpose", "op": "eq", "value": "x"},
            ]
        },
        # every branch of an 'any' unreachable
        {
            "any": [
                {"field": "currency", "op": "eq", "value": "JPY"},
                {"field": "count", "op": "gt", "value": 10},
            ]
        },
    ],
)
def test_a_stage_whose_condition_can_never_be_true_is_unreachable(when):
    problems = problems_of(stage(), stage(name="later", when=when))
    assert len(problems) == 1, problems
    assert problems[0].startswith("stage 2 'later': unreachable: its condition can never be true (")


@pytest.mark.parametrize(
    "when",
    [
        {"all": [{"field": "amount", "op": "gte", "value": 5}, {"field": "amount", "op": "lte", "value": 5}]},
        {
            "all": [
                {"field": "amount", "op": "gt", "value": 1000},
                {"field": "amount", "op": "lte", "value": 10000},
            ]
        },
        {"field": "amount", "op": "lte", "value": 100000},
        {"field": "count", "op": "lte", "value": 1},
        {"field": "currency", "op": "in", "value": ["JPY", "EUR"]},
        {
            "all": [
                {"field": "currency", "op": "ne", "value": "EUR"},
                {"field": "currency", "op": "ne", "value": "USD"},
            ]
        },
        {
            "all": [
                {"field": "level", "op": "in", "value": [1, 2, 3]},
                {"field": "level", "op": "gt", "value": 2},
            ]
        },
        {"field": "purpose", "op": "exists", "value": False},
        {
            "any": [
                {"field": "currency", "op": "eq", "value": "JPY"},
                {"field": "amount", "op": "gt", "value": 10},
            ]
        },
        {"all": [{"field": "amount", "op": "gt", "value": 10}, {"field": "count", "op": "lt", "value": 5}]},
    ],
)
def test_a_condition_that_some_payload_meets_is_reachable(when):
    assert problems_of(stage(when=when)) == []


def test_every_problem_is_one_line_naming_its_stage():
    # given a policy with several problems in two stages
    problems = problems_of(
        stage(
            approvers={"users": ["nobody"], "groups": ["ghosts"]},
            when={"field": "colour", "op": "eq", "value": 1},
        ),
        stage(name="committee", approvers={"users": ["alex"]}, rule="quorum", quorum=2),
    )
    # then each is one line, in stage order
    assert problems == [
        "stage 1 'review': user 'nobody' does not exist or is not active",
        "stage 1 'review': group 'ghosts' does not exist",
        "stage 1 'review': condition on 'colour': the payload schema has no such field",
        "stage 2 'committee': quorum 2 is larger than its 1 possible approver(s)",
    ]


# --- the checks against this installation's database -------------------------------------


@pytest.mark.django_db
def test_the_database_directory_knows_who_may_decide():
    # given an approver, an inactive approver, a person without the approver role and a group of them
    finance = GroupFactory.create(name="finance")
    fiona = UserFactory.create(username="fiona", roles=[APPROVERS], member_of=[finance])
    UserFactory.create(username="gone", roles=[APPROVERS], member_of=[finance], is_active=False)
    UserFactory.create(username="olaf", member_of=[finance])
    GroupFactory.create(name="empty")
    directory = DatabaseDirectory()
    # then people are found by user name, and only active ones
    assert directory.user("fiona") == Person(id=fiona.pk, name="fiona", may_decide=True)
    olaf = directory.user("olaf")
    assert olaf is not None
    assert olaf.may_decide is False
    assert directory.user("gone") is None
    assert directory.user("nobody") is None
    # and a group's active members, each saying whether they may decide
    assert [(p.name, p.may_decide) for p in directory.group_members("finance") or []] == [
        ("fiona", True),
        ("olaf", False),
    ]
    assert directory.group_members("empty") == []
    assert directory.group_members("ghosts") is None


@pytest.mark.django_db
def test_document_problems_reads_checks_and_names_schema_problems():
    # given an approver and a finance group with nobody who may decide
    UserFactory.create(username="alex", roles=[APPROVERS])
    finance = GroupFactory.create(name="finance")
    UserFactory.create(username="olaf", member_of=[finance])
    schema = {"type": "object", "properties": {"amount": {"type": "number"}}}
    # then a sound document has no problems
    assert document_problems(document={"stages": [stage()]}, schema=schema) == []
    # a broken document gives its structural problems
    assert document_problems(document={"stages": []}, schema=schema) == [
        "stages: a policy needs at least one stage"
    ]
    # a readable one is checked against the people and the schema
    assert document_problems(
        document={
            "stages": [
                stage(approvers={"groups": ["finance"]}, when={"field": "amount", "op": "eq", "value": "x"})
            ]
        },
        schema=schema,
    ) == [
        "stage 1 'review': group 'finance' has no active members who may decide: its approver set is empty",
        "stage 1 'review': condition 'amount = 'x'': 'amount' is number, but 'x' is string",
    ]
    # and a broken payload schema is named first
    assert document_problems(document={"stages": [stage()]}, schema={"type": "array"}) == [
        "payload schema: the payload schema must describe an object (type: object)"
    ]


def test_not_in_every_allowed_value_is_unreachable_only_when_the_field_is_required():
    # given a condition no value of the enum meets, which a payload without the field does meet
    when = {"field": "currency", "op": "not_in", "value": ["EUR", "USD", "GBP"]}
    nested = {"field": "vendor.country", "op": "ne", "value": "PT"}
    optional = {
        "type": "object",
        "properties": {"currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]}},
    }
    required = {**optional, "required": ["currency"]}
    vendor = {"type": "string", "enum": ["PT"]}
    optional_vendor = {
        "type": "object",
        "properties": {"vendor": {"type": "object", "properties": {"country": vendor}}},
    }
    required_vendor = {
        "type": "object",
        "required": ["vendor"],
        "properties": {
            "vendor": {"type": "object", "required": ["country"], "properties": {"country": vendor}}
        },
    }
    # then it is reachable while the field may be left out, and unreachable once it is required
    assert problems_of(stage(when=when), schema=optional) == []
    assert problems_of(stage(when=when), schema=required) == [
        "stage 1 'review': unreachable: its condition can never be true (currency not in ['EUR', 'USD', 'GBP'])"
    ]
    assert problems_of(stage(when=nested), schema=optional_vendor) == []
    assert problems_of(stage(when=nested), schema=required_vendor) == [
        "stage 1 'review': unreachable: its condition can never be true (vendor.country ≠ 'PT')"
    ]
