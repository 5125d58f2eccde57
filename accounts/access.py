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

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Model, Value
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermission, UserObjectPermission

if TYPE_CHECKING:
    pass

_ACCESS = "_baton_access"
_OBJECT_PERMS = "_baton_object_perms"


@dataclass(frozen=True)
class Access:
    permissions: frozenset[str]  # 'app_label.codename'
    group_ids: frozenset[int]


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
        fields = ("kind", "content_type__app_label", "codename")
        perms = Permission.objects.annotate(kind=Value("p"))
        groups = (
            user.groups.through.objects.filter(user_id=user.pk)
            .annotate(kind=Value("g"), label=Value(""), code=Cast("group_id", CharField()))
            .values_list("kind", "label", "code")
            .order_by()
        )
        if user.is_superuser:
            rows = perms.values_list(*fields).order_by().union(groups, all=True)
        else:
            own = perms.filter(user=user).values_list(*fields).order_by()
            via_groups = perms.filter(group__user=user).values_list(*fields).order_by()
            rows = own.union(via_groups, groups, all=True)
        permissions: set[str] = set()
        group_ids: set[int] = set()
        for kind, label, code in rows:
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


def object_permissions(user: Any, obj: Model) -> frozenset[str]:
    """The codenames of django-guardian object permissions `user` holds on `obj`, their
    own and their groups', in one statement (cached on the user object per object)."""
    if not user.is_active or user.is_anonymous:
        return frozenset()
    cache: dict[tuple[int, str], frozenset[str]] = getattr(user, _OBJECT_PERMS, None) or {}
    content_type = ContentType.objects.get_for_model(obj)
    key = (content_type.pk, str(obj.pk))
    if key not in cache:
        where = {"content_type": content_type, "object_pk": str(obj.pk)}
        own = UserObjectPermission.objects.filter(user_id=user.pk, **where)
        via_groups = GroupObjectPermission.objects.filter(group_id__in=user_access(user).group_ids, **where)
        codes = (
            own.values_list("permission__codename", flat=True)
            .order_by()
            .union(via_groups.values_list("permission__codename", flat=True).order_by())
        )
        cache[key] = frozenset(codes)
        setattr(user, _OBJECT_PERMS, cache)
    return cache[key]
