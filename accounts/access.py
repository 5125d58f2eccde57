"""What a person may do: their permissions and their groups, read together once per request.

Every action checks a role permission and which groups a person is in (who holds an item
offered to a group). Both come from one statement and are cached on the user object for
the rest of the request, as Django caches permissions; object permissions (django-
guardian's, e.g. which request types someone may submit) are read in one statement per
object and cached beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Model
from guardian.models import GroupObjectPermission, UserObjectPermission

if TYPE_CHECKING:
    pass

_ACCESS = "_baton_access"
_OBJECT_PERMS = "_baton_object_perms"


@dataclass(frozen=True)
class Access:
    permissions: frozenset[str]  # 'app_label.codename'
    group_ids: frozenset[int]


# The one statement that reads a person's roles: their own permissions, their groups'
# permissions and their group ids (a superuser: every permission). Plain SQL because it
# runs on every action and the ORM's UNION of three querysets costs 1.15 ms of Python to
# build against 0.1 ms for this (measured; README). The accounts app sits below the
# engine's SQL module (workflows.sql), so its one statement lives here, tested on SQLite
# and PostgreSQL against Django's own answers (tests/accounts/test_backends.py).
_ROLES_SQL = """
    SELECT 'p', ct.app_label, p.codename FROM {permission} p
        JOIN {content_type} ct ON ct.id = p.content_type_id
        JOIN {user_permissions} up ON up.permission_id = p.id
        WHERE up.{user_column} = %s
    UNION ALL
    SELECT 'p', ct.app_label, p.codename FROM {permission} p
        JOIN {content_type} ct ON ct.id = p.content_type_id
        JOIN {group_permissions} gp ON gp.permission_id = p.id
        JOIN {user_groups} ug ON ug.group_id = gp.group_id
        WHERE ug.{user_column} = %s
    UNION ALL
    SELECT 'g', '', CAST(ug.group_id AS TEXT) FROM {user_groups} ug WHERE ug.{user_column} = %s
"""
_SUPERUSER_SQL = """
    SELECT 'p', ct.app_label, p.codename FROM {permission} p
        JOIN {content_type} ct ON ct.id = p.content_type_id
    UNION ALL
    SELECT 'g', '', CAST(ug.group_id AS TEXT) FROM {user_groups} ug WHERE ug.{user_column} = %s
"""


def _table_names(user: Any) -> dict[str, str]:
    """The tables (and the user column) the statements here name, quoted as Django names
    them for `user`'s model."""
    model = user._meta.model  # also through request.user's lazy object
    quote = connection.ops.quote_name
    user_permissions = model._meta.get_field("user_permissions").remote_field.through._meta
    user_groups = model._meta.get_field("groups").remote_field.through._meta
    return {
        "permission": quote(Permission._meta.db_table),
        "content_type": quote(ContentType._meta.db_table),
        "user_permissions": quote(user_permissions.db_table),
        "group_permissions": quote(Group.permissions.through._meta.db_table),
        "user_groups": quote(user_groups.db_table),
        "user_column": quote(user_groups.get_field(model._meta.model_name).column),
        "user_object_perms": quote(UserObjectPermission._meta.db_table),
        "group_object_perms": quote(GroupObjectPermission._meta.db_table),
    }


def _roles_sql(user: Any, *, superuser: bool) -> tuple[str, list[Any]]:
    """The statement for `user`'s model, with its tables named as Django names them."""
    names = _table_names(user)
    if superuser:
        return _SUPERUSER_SQL.format(**names), [user.pk]
    return _ROLES_SQL.format(**names), [user.pk, user.pk, user.pk]


def user_access(user: Any) -> Access:
    """`user`'s global permissions (own, through groups; all for a superuser) and group ids.

    One statement, cached on the user object. An inactive or anonymous user has none.
    """
    cached: Access | None = getattr(user, _ACCESS, None)
    if cached is not None:
        return cached
    if not user.is_active or user.is_anonymous:
        access = Access(frozenset(), frozenset())
    else:
        sql, params = _roles_sql(user, superuser=user.is_superuser)
        permissions: set[str] = set()
        group_ids: set[int] = set()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for kind, label, code in cursor.fetchall():
                if kind == "g":
                    group_ids.add(int(code))
                else:
                    permissions.add(f"{label}.{code}")
        access = Access(frozenset(permissions), frozenset(group_ids))
    setattr(user, _ACCESS, access)
    return access


def access_forget(user: Any) -> None:
    """Drop what `user_access` and `object_permissions` cached (after changing roles)."""
    for name in (_ACCESS, _OBJECT_PERMS):
        if hasattr(user, name):
            delattr(user, name)


# A person's django-guardian object permissions on one object, their own and their
# groups', as one statement: the ORM's UNION of two querysets cost more Python to build
# than any other read of a submission (bench/peer's profile). Tested against guardian's
# own checker on SQLite and PostgreSQL (tests/accounts/test_access.py).
_OBJECT_PERMS_SQL = """
    SELECT p.codename FROM {permission} p
        JOIN {user_object_perms} uop ON uop.permission_id = p.id
        WHERE uop.user_id = %s AND uop.content_type_id = %s AND uop.object_pk = %s
    UNION
    SELECT p.codename FROM {permission} p
        JOIN {group_object_perms} gop ON gop.permission_id = p.id
        JOIN {user_groups} ug ON ug.group_id = gop.group_id
        WHERE ug.{user_column} = %s AND gop.content_type_id = %s AND gop.object_pk = %s
"""


def object_permissions(user: Any, obj: Model) -> frozenset[str]:
    """The codenames of django-guardian object permissions `user` holds on `obj`, their
    own and their groups', in one statement (cached on the user object per object)."""
    if not user.is_active or user.is_anonymous:
        return frozenset()
    cache: dict[tuple[int, str], frozenset[str]] = getattr(user, _OBJECT_PERMS, None) or {}
    content_type = ContentType.objects.get_for_model(obj)
    key = (content_type.pk, str(obj.pk))
    if key not in cache:
        with connection.cursor() as cursor:
            cursor.execute(_OBJECT_PERMS_SQL.format(**_table_names(user)), [user.pk, *key, user.pk, *key])
            cache[key] = frozenset(code for (code,) in cursor.fetchall())
        setattr(user, _OBJECT_PERMS, cache)
    return cache[key]
