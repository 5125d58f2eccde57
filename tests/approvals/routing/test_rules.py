"""Stage rules at run time (any / all / quorum, with and without veto), durations, and the
route a payload takes through a policy's conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.routing import (
    Approvers,
    Leaf,
    Route,
    RouteStep,
    Stage,
    Tally,
    duration_parse,
    duration_text,
    policy_parse,
    stage_outcome,
)

PEOPLE = Approvers(users=("a", "b", "c"))


def _stage(rule: str, *, quorum: int | None = None, veto: bool = True) -> Stage:
    return Stage(name="s", approvers=PEOPLE, rule=rule, quorum=quorum, veto=veto)


def _tally(
    approvals: int = 0, rejections: int = 0, undecided: int = 3, slots: int = 3, filled: int = 0
) -> Tally:
    keys = [f"user:{i}" for i in range(slots)]
    return Tally(
        slots=frozenset(keys),
        approved_slots=frozenset(keys[:filled]),
        approvals=approvals,
        rejections=rejections,
        undecided=undecided,
    )


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d12h30m", timedelta(days=1, hours=12, minutes=30)),
        ("2h90m", timedelta(hours=3, minutes=30)),
        (" 2d ", timedelta(days=2)),
        ("P2DT4H", timedelta(days=2, hours=4)),
        ("PT45M", timedelta(minutes=45)),
        ("P1D", timedelta(days=1)),
    ],
)
def test_durations_read(text, value):
    assert duration_parse(text) == value


@pytest.mark.parametrize(
    "text", ["", "  ", "soon", "2 days", "2D", "-2d", "0m", "0d0h", "P0D", "PT0S", "d", 5, None, 1.5]
)
def test_what_is_not_a_positive_duration_reads_as_none(text):
    assert duration_parse(text) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=30), "30m"),
        (timedelta(hours=4), "4h"),
        (timedelta(days=2), "2d"),
        (timedelta(days=1, hours=12, minutes=5), "1d12h5m"),
        (timedelta(0), "0m"),
        (timedelta(seconds=90), "P0DT00H01M30S"),
    ],
)
def test_durations_are_written_back_so_they_read_the_same(value, text):
    assert duration_text(value) == text
    if value:
        assert duration_parse(duration_text(value)) == value


# --- stage rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tally", "veto", "outcome"),
    [
        (_tally(), True, "pending"),
        (_tally(approvals=1, undecided=2), True, "met"),
        (_tally(approvals=1, undecided=2), False, "met"),
        # with a veto one reject ends it
        (_tally(rejections=1, undecided=2), True, "failed"),
        # without, it is a vote against while someone may still approve
        (_tally(rejections=1, undecided=2), False, "pending"),
        (_tally(rejections=2, undecided=1), False, "pending"),
        (_tally(rejections=3, undecided=0), False, "failed"),
        # nobody left who could approve
        (_tally(undecided=0), True, "failed"),
        (_tally(undecided=0), False, "failed"),
    ],
)
def test_rule_any(tally, veto, outcome):
    assert stage_outcome(_stage("any", veto=veto), tally) == outcome


@pytest.mark.parametrize(
    ("tally", "veto", "outcome"),
    [
        (_tally(), True, "pending"),
        (_tally(approvals=1, undecided=2), True, "pending"),
        (_tally(approvals=2, undecided=1), True, "met"),
        (_tally(approvals=3, undecided=0), False, "met"),
        # a veto: one reject ends it, even with approvals
        (_tally(approvals=1, rejections=1, undecided=1), True, "failed"),
        # no veto: a reject is a vote against; the stage fails once two approvals are out of reach
        (_tally(approvals=1, rejections=1, undecided=1), False, "pending"),
        (_tally(rejections=1, undecided=2), False, "pending"),
        (_tally(rejections=2, undecided=1), False, "failed"),
        (_tally(approvals=1, rejections=2, undecided=0), False, "failed"),
        # approvals arriving after a dissent still meet it
        (_tally(approvals=2, rejections=1, undecided=0), False, "met"),
        # too few people left even without a reject
        (_tally(approvals=1, undecided=0), True, "failed"),
    ],
)
def test_rule_quorum_of_two(tally, veto, outcome):
    assert stage_outcome(_stage("quorum", quorum=2, veto=veto), tally) == outcome


@pytest.mark.parametrize(
    ("tally", "outcome"),
    [
        (_tally(), "pending"),
        (_tally(approvals=2, filled=2, undecided=1), "pending"),
        (_tally(approvals=3, filled=3, undecided=0), "met"),
        # one reject, from any of them, ends it
        (_tally(approvals=2, filled=2, rejections=1, undecided=0), "failed"),
        (_tally(rejections=1, undecided=2), "failed"),
        # 'all' counts places (a group is one place), not people
        (_tally(approvals=5, filled=2, undecided=0), "pending"),
        (_tally(approvals=1, filled=3, undecided=0), "met"),
        # a stage with no places is never met by nobody
        (_tally(slots=0, undecided=0), "pending"),
    ],
)
def test_rule_all(tally, outcome):
    assert stage_outcome(_stage("all"), tally) == outcome


def test_rule_quorum_counts_its_quorum_and_any_counts_one():
    assert _stage("quorum", quorum=3).needed == 3
    assert _stage("any").needed == 1
    assert stage_outcome(_stage("quorum", quorum=3), _tally(approvals=2, undecided=1)) == "pending"
    assert stage_outcome(_stage("quorum", quorum=3), _tally(approvals=3, undecided=0)) == "met"


@pytest.mark.parametrize(
    ("stage", "text"),
    [
        (_stage("any"), "any one of them"),
        (_stage("any", veto=False), "any one of them, no veto"),
        (_stage("all"), "all of them"),
        (_stage("quorum", quorum=2), "2 of them"),
        (_stage("quorum", quorum=2, veto=False), "2 of them, no veto"),
    ],
)
def test_rules_describe_themselves(stage, text):
    assert stage.rule_text() == text


def test_approvers_describe_themselves():
    assert Approvers().is_empty
    assert Approvers().describe() == "nobody"
    assert (
        Approvers(users=("pat",), groups=("finance",), requester_manager=True, team_manager=True).describe()
        == "pat, group finance, the requester's manager, the requester's team manager"
    )


# --- the route through conditions ------------------------------------------------------------

EXPENSE = policy_parse(
    {
        "stages": [
            {"name": "manager", "approvers": {"requester_manager": True}},
            {
                "name": "finance",
                "approvers": {"groups": ["finance"]},
                "when": {"field": "amount", "op": "gt", "value": 1000},
            },
            {
                "name": "cfo",
                "approvers": {"users": ["carl"]},
                "when": {"field": "amount", "op": "gt", "value": 10000},
            },
        ]
    }
)


def test_a_route_describes_each_stage_and_why_one_is_skipped():
    manager, finance, cfo = EXPENSE.stages
    route = Route(
        steps=(
            RouteStep(index=0, stage=manager, applies=True, reason="", approvers=("Maria",)),
            RouteStep(
                index=1, stage=finance, applies=True, reason="", approvers=(), problem="nobody could approve"
            ),
            RouteStep(index=2, stage=cfo, applies=False, reason="amount is 4200, so amount > 10000 is false"),
        )
    )
    assert [s.stage.name for s in route.applied] == ["manager", "finance"]
    assert route.describe() == [
        "1. manager: Maria; any one of them",
        "2. finance: nobody; any one of them — nobody could approve",
        "3. cfo: skipped (amount is 4200, so amount > 10000 is false)",
    ]
    # a route where every stage is skipped says it is approved at once
    skipped = Route(steps=(RouteStep(index=0, stage=cfo, applies=False, reason="why"),))
    assert skipped.describe()[-1] == "every stage is skipped: the request is approved on submission"
    assert Leaf("a", "eq", 1) != Leaf("a", "eq", 2)
