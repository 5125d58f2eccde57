"""One request's way through its policy at run time: who fills a stage, what was decided
in it, and where the request goes next. Reads only; the lifecycle actions
(approvals.lifecycle) turn what these say into a `RoutePlan` the service applies. The
simulation and the policy-move report use the same functions, so what they show is what
will happen.

    slots.py     who fills a stage (people, groups, managers, the escalation stand-in)
    counting.py  which decisions count, who already spoke, a stage's outcome
    enter.py     entering the route at a stage; the simulation
    plan.py      the plain values: Slot, StageEntry, RoutePlan
"""

from approvals.route.counting import deciders_this_revision, decisions_counted, stage_result, undecided
from approvals.route.enter import entry_change, route_enter, route_simulate
from approvals.route.plan import RoutePlan, Slot, StageEntry, route_data
from approvals.route.slots import (
    STAND_IN,
    escalation_slots,
    handoff_specs,
    stage_slots,
    stand_in_rule,
    too_few,
    users_who_may_decide,
)

__all__ = [
    "STAND_IN",
    "RoutePlan",
    "Slot",
    "StageEntry",
    "deciders_this_revision",
    "decisions_counted",
    "entry_change",
    "escalation_slots",
    "handoff_specs",
    "route_data",
    "route_enter",
    "route_simulate",
    "stage_result",
    "stage_slots",
    "stand_in_rule",
    "too_few",
    "undecided",
    "users_who_may_decide",
]
