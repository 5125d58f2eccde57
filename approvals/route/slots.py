"""Who fills a stage ("slots"): each named user, each named group (any member may speak
for it) and each manager, one slot apiece; for a quorum, groups are opened up into their
members, because a quorum counts people. The requester is never among them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from accounts.calendars import CalendarRule, WorkingHours, calendar_for, working_duration
from accounts.models import TeamMembership, User
from approvals.route.plan import Slot
from approvals.routing import Stage, payload_value
from workflows import sql
from workflows.models import HandoffSpec

DECIDE_PERMISSION = ("approvals", "decide_approvalrequest")
# The slots of a stage handed to its escalation target start with this: the stand-in
# decides the stage alone (see stand_in_rule), whatever its rule asked of the approvers.
STAND_IN = "stand-in:"


def users_who_may_decide(user_ids: Iterable[int]) -> set[int]:
    """Of these active users, those holding the decide permission (own, group, superuser)."""
    ids = set(user_ids)
    if not ids:
        return set()
    app_label, codename = DECIDE_PERMISSION
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    query = Q(is_superuser=True)
    if permission is not None:
        query |= Q(user_permissions=permission) | Q(groups__permissions=permission)
    return set(User.objects.filter(query, pk__in=ids, is_active=True).values_list("pk", flat=True).distinct())


def _team_managers(requester: User) -> list[User]:
    teams = TeamMembership.objects.filter(user=requester).values("team_id")
    memberships = (
        TeamMembership.objects.filter(team_id__in=teams, is_manager=True)
        .exclude(user=requester)
        .select_related("user")
        .order_by("user__username")
    )
    return [m.user for m in memberships]


def _named_by_output(source: str, data: Mapping[str, Any]) -> list[str]:
    """The user names an earlier task's output holds (a name, or a list of names)."""
    value = payload_value(data, source)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def stage_slots(stage: Stage, *, requester: User, data: Mapping[str, Any] | None = None) -> list[Slot]:
    """The slots of `stage` for a request by `requester`: active people (for a decision,
    those who may decide; never the requester) and the named groups. `data` is what the
    request says and its tasks handed on (approvals.route.plan.route_data), for the
    people an earlier task's output names."""
    people: list[User] = []
    names = list(stage.approvers.users)
    if stage.approvers.from_output and data is not None:
        names += _named_by_output(stage.approvers.from_output, data)
    if names:
        by_name = {u.username: u for u in User.objects.filter(username__in=names, is_active=True)}
        people += [by_name[name] for name in dict.fromkeys(names) if name in by_name]
    if stage.approvers.requester_manager and requester.manager_id is not None:
        manager = User.objects.filter(pk=requester.manager_id, is_active=True).first()
        if manager is not None:
            people.append(manager)
    if stage.approvers.team_manager:
        people += _team_managers(requester)
    groups: list[Group] = []
    if stage.approvers.groups:
        # Plain SQL: every submission resolves its first stage's groups by name here.
        where, params = sql.in_list(Group, "name", stage.approvers.groups)
        groups = sql.rows_select(Group, where=where, params=params)
    groups.sort(key=lambda g: stage.approvers.groups.index(g.name))
    members_by_group: dict[int, list[User]] = {g.pk: [] for g in groups}
    if groups and stage.rule == "quorum":
        # Only a quorum counts people: other rules give each group one place, whoever is in it.
        memberships = (
            User.groups.through.objects.filter(group_id__in=members_by_group, user__is_active=True)
            .exclude(user_id=requester.pk)
            .select_related("user")
        )
        for membership in memberships:
            members_by_group[membership.group_id].append(membership.user)
    everyone = {p.pk for p in people} | {m.pk for ms in members_by_group.values() for m in ms}
    # A task's holders are whoever it names; a decision's must also hold the approver role.
    deciders = everyone if stage.is_task else users_who_may_decide(everyone)

    slots: list[Slot] = []
    seen: set[str] = set()

    def add(slot: Slot) -> None:
        if slot.key not in seen:
            seen.add(slot.key)
            slots.append(slot)

    task = stage.name if stage.is_task else ""
    for person in people:
        if person.pk != requester.pk and person.pk in deciders:
            add(Slot(key=f"user:{person.pk}", user=person, stage=task))
    for group in groups:
        members = sorted(
            (m for m in members_by_group[group.pk] if m.pk in deciders), key=lambda m: m.username
        )
        if stage.rule == "quorum" and not stage.is_task:
            for member in members:
                add(Slot(key=f"user:{member.pk}", user=member))
        else:
            # A group's place stands even while it has nobody who may decide: people join
            # groups while requests wait, and the stage's SLA escalates meanwhile.
            add(Slot(key=f"group:{group.pk}", group=group, stage=task))
    return slots


def escalation_slots(stage: Stage, *, requester: User) -> list[Slot]:
    """The stand-in for a stage nobody (or too few) could approve: its escalation target."""
    target = stage.escalate_to
    if target is None:
        return []
    task = stage.name if stage.is_task else ""
    if target.user:
        user = User.objects.filter(username=target.user, is_active=True).exclude(pk=requester.pk).first()
        return [Slot(key=f"{STAND_IN}user:{user.pk}", user=user, stage=task)] if user is not None else []
    group = Group.objects.filter(name=target.group).first()
    return [Slot(key=f"{STAND_IN}group:{group.pk}", group=group, stage=task)] if group is not None else []


def stand_in_rule(stage: Stage, slot_keys: Iterable[str]) -> Stage:
    """The rule a stage is decided by: its own, or 'any one' when its escalation target
    stands in. A stand-in is one person or one group: a quorum of 3 handed to them
    could otherwise never be met, and their approval would count as a failure."""
    if any(key.startswith(STAND_IN) for key in slot_keys):
        return dataclasses.replace(stage, rule="any", quorum=None)
    return stage


def too_few(stage: Stage, slots: list[Slot]) -> bool:
    """Whether `slots` cannot fill `stage`: nobody, or (a decision) fewer people than its quorum."""
    if not slots:
        return True
    return (
        not stage.is_task
        and stage.rule == "quorum"
        and bool(stage.quorum)
        and len(slots) < (stage.quorum or 0)
    )


def handoff_specs(stage: Stage, slots: list[Slot]) -> list[HandoffSpec]:
    """A handoff per slot, due the stage's SLA after it opens: in wall-clock time, or
    (`sla_clock: working`) in working time of the holder's calendar (a group's: the
    organisation's), with its reminders at the stage's fractions of it."""
    specs = []
    rules: dict[int | None, CalendarRule] = {}
    for s in slots:
        due_rule = None
        if stage.sla is not None and stage.sla_clock == "working":
            holder = s.user.pk if s.user is not None else None
            if holder not in rules:
                rules[holder] = calendar_for(s.user)
            rule = rules[holder]
            due_rule = WorkingHours(rule=rule, duration=working_duration(rule, stage.sla))
        specs.append(
            HandoffSpec(
                user=s.user,
                group=s.group,
                stage=s.stage or stage.name,
                slot=s.key,
                due_in=stage.sla if due_rule is None else None,
                due_rule=due_rule,
                remind_at=stage.remind_at,
            )
        )
    return specs
