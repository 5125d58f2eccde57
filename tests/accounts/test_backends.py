"""RoleModelBackend: the permissions Django's ModelBackend gives, read in one query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.backends import RoleModelBackend
from accounts.models import User
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def with_group_perms(*dotted: str) -> Group:
    group = GroupFactory.create()
    group.permissions.add(*[permission(d) for d in dotted])
    return group


def own_perms() -> User:
    user = UserFactory.create()
    user.user_permissions.add(permission("auth.add_group"), permission("auth.view_group"))
    return user


def group_perms() -> User:
    # two groups, one permission in both: the union holds it once
    return UserFactory.create(
        member_of=[
            with_group_perms("auth.change_group", "contenttypes.view_contenttype"),
            with_group_perms("auth.change_group", "auth.view_permission"),
        ]
    )


def both() -> User:
    # one permission both their own and their group's
    user = UserFactory.create(member_of=[with_group_perms("auth.view_group", "auth.delete_group")])
    user.user_permissions.add(permission("auth.add_group"), permission("auth.view_group"))
    return user


def none() -> User:
    return UserFactory.create(member_of=[GroupFactory.create()])


def inactive() -> User:
    user = both()
    user.is_active = False
    user.save(update_fields=["is_active"])
    return user


def superuser() -> User:
    return UserFactory.create(is_superuser=True)


ALL = "<every permission>"
# Each kind of person, and the permissions they must end up with.
PEOPLE: dict[str, tuple[Callable[[], User], set[str] | str]] = {
    "own permissions": (own_perms, {"auth.add_group", "auth.view_group"}),
    "group permissions": (
        group_perms,
        {"auth.change_group", "contenttypes.view_contenttype", "auth.view_permission"},
    ),
    "own and group permissions": (both, {"auth.add_group", "auth.view_group", "auth.delete_group"}),
    "no permissions": (none, set()),
    "inactive": (inactive, set()),
    "superuser": (superuser, ALL),
}


def fresh(user: User) -> User:
    """The user as a new web request loads them: no permission cache of any backend."""
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize(("make", "theirs"), PEOPLE.values(), ids=PEOPLE.keys())
def test_the_permissions_are_those_django_gives(make: Callable[[], User], theirs: set[str] | str):
    # given a person
    user = make()
    # when the role backend reads their permissions on a freshly loaded user
    backend = RoleModelBackend()
    got = backend.get_all_permissions(fresh(user))
    # then they are Django's, permission for permission
    assert got == ModelBackend().get_all_permissions(fresh(user))
    everything = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.all()}
    assert got == (everything if theirs == ALL else theirs)
    # and the checks built on them answer as Django's do
    for perm in ["auth.add_group", "auth.change_group", "auth.view_permission", "auth.add_user"]:
        assert backend.has_perm(fresh(user), perm) == ModelBackend().has_perm(fresh(user), perm), perm
    assert backend.has_module_perms(fresh(user), "auth") == ModelBackend().has_module_perms(
        fresh(user), "auth"
    )


@pytest.mark.parametrize("make", [own_perms, group_perms, both, none, superuser], ids=lambda f: f.__name__)
def test_one_query_on_a_fresh_user_and_none_after(make: Callable[[], User]):
    # given a person just loaded, as a web request or a transition loads them
    user = fresh(make())
    backend = RoleModelBackend()
    # when their permissions are read twice
    with CaptureQueriesContext(connection) as first:
        permissions = backend.get_all_permissions(user)
    with CaptureQueriesContext(connection) as second:
        again = backend.get_all_permissions(user)
    # then the first read is one query (own and group permissions together) and the second none
    assert len(first.captured_queries) == 1, [q["sql"] for q in first.captured_queries]
    assert len(second.captured_queries) == 0
    assert again == permissions


def test_an_inactive_or_anonymous_user_has_no_permissions_and_costs_no_query() -> None:
    # given an inactive person with permissions of their own and of a group, and an anonymous visitor
    backend = RoleModelBackend()
    nobody: list[Any] = [fresh(inactive()), AnonymousUser()]
    # when their permissions are read  /  then there are none, and nothing was asked of the database
    with CaptureQueriesContext(connection) as captured:
        assert [backend.get_all_permissions(u) for u in nobody] == [set(), set()]
    assert captured.captured_queries == []


def test_object_permissions_are_left_to_the_object_backend():
    # given a person with model permissions
    user = fresh(both())
    # when asked for the permissions on one object  /  then this backend has none to give
    assert RoleModelBackend().get_all_permissions(user, obj=Group.objects.first()) == set()


def test_a_user_has_perm_through_the_configured_backends_in_one_query(settings: Any):
    # given the project's authentication backends and a person with own and group permissions
    assert "accounts.backends.RoleModelBackend" in settings.AUTHENTICATION_BACKENDS
    assert "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS
    user = fresh(both())
    # when the person's permissions are checked, as a view or a transition does
    with CaptureQueriesContext(connection) as captured:
        answers = [user.has_perm(p) for p in ("auth.add_group", "auth.delete_group", "auth.add_user")]
    # then the answers are right, from a single query
    assert answers == [True, True, False]
    assert len(captured.captured_queries) == 1, [q["sql"] for q in captured.captured_queries]
