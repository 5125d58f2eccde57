"""Who a manager looks after: the members of the teams they manage, and their direct
reports (`User.manager`). Read by the team view and by who may set someone's delegation."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import TeamMembership, User


def team_members(manager: User) -> QuerySet[User]:
    """Everyone `manager` looks after, themselves left out (one query when evaluated).

    Inactive people stay in: the work they still hold is what a manager must hand on.
    """
    managed_teams = TeamMembership.objects.filter(user=manager, is_manager=True).values("team_id")
    return (
        User.objects.filter(Q(team_memberships__team_id__in=managed_teams) | Q(manager=manager))
        .exclude(pk=manager.pk)
        .distinct()
    )


def everyone_in_teams() -> QuerySet[User]:
    """Every member of any team and everyone with a line manager: whom a superuser looks after."""
    return User.objects.filter(Q(team_memberships__isnull=False) | Q(manager__isnull=False)).distinct()


def manages(*, manager: User, member: User) -> bool:
    """Whether `manager` (active) looks after `member`: their line manager, or a manager of
    a team `member` belongs to."""
    if not manager.is_active or manager.pk == member.pk:
        return False
    if member.manager_id == manager.pk:
        return True
    return TeamMembership.objects.filter(
        user=member,
        team__memberships__user=manager,
        team__memberships__is_manager=True,
    ).exists()
