"""accounts.access.object_permissions: django-guardian's answers, in one plain statement."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import assign_perm

from accounts.access import object_permissions
from accounts.models import User
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGE, DELETE, VIEW = "auth.change_group", "auth.delete_group", "auth.view_group"


def own(target: Group, other: Group) -> User:
    user = UserFactory.create()
    assign_perm(CHANGE, user, target)
    assign_perm(DELETE, user, other)  # on another object: not an answer for `target`
    return user


def via_groups(target: Group, other: Group) -> User:
    # two groups granting one permission each, and the same permission twice
    first, second = GroupFactory.create(), GroupFactory.create()
    assign_perm(CHANGE, first, target)
    assign_perm(VIEW, second, target)
    assign_perm(VIEW, first, target)
    assign_perm(DELETE, second, other)
    return UserFactory.create(member_of=[first, second])


def both(target: Group, other: Group) -> User:
    group = GroupFactory.create()
    assign_perm(VIEW, group, target)
    user = UserFactory.create(member_of=[group])
    assign_perm(VIEW, user, target)
    assign_perm(DELETE, user, target)
    return user


def of_a_group_left(target: Group, other: Group) -> User:
    # the group holds the permission, but the person is not (or no longer) in it
    group = GroupFactory.create()
    assign_perm(CHANGE, group, target)
    return UserFactory.create()


PEOPLE: dict[str, Callable[[Group, Group], User]] = {
    "own": own,
    "via groups": via_groups,
    "both": both,
    "of a group left": of_a_group_left,
}


@pytest.mark.parametrize("make", PEOPLE.values(), ids=PEOPLE.keys())
def test_object_permissions_are_those_guardian_gives(make: Callable[[Group, Group], User]):
    # given a person holding object permissions on one object, and others elsewhere
    target, other = GroupFactory.create(), GroupFactory.create()
    user = User.objects.get(pk=make(target, other).pk)
    expected = set(ObjectPermissionChecker(User.objects.get(pk=user.pk)).get_perms(target))
    # when their permissions on the object are read, twice
    with CaptureQueriesContext(connection) as captured:
        first = object_permissions(user, target)
        again = object_permissions(user, target)
    # then they are guardian's answer, read in one statement and then cached
    assert first == again == expected
    assert len(captured.captured_queries) == 1, [q["sql"] for q in captured.captured_queries]


def test_an_inactive_person_holds_no_object_permissions_and_costs_no_query():
    # given a person who holds an object permission, then is deactivated
    target, other = GroupFactory.create(), GroupFactory.create()
    user = User.objects.get(pk=both(target, other).pk)
    user.is_active = False
    # when their permissions on the object are read  /  then there are none, and no query ran
    with CaptureQueriesContext(connection) as captured:
        assert object_permissions(user, target) == frozenset()
    assert captured.captured_queries == []
