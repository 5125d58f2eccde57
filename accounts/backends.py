"""Authentication backend: Django's ModelBackend, reading permissions in one query."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission

_CACHE = "_baton_all_perm_cache"


class RoleModelBackend(ModelBackend):
    """ModelBackend whose `get_all_permissions` asks once for a person's own and their
    groups' permissions (a UNION), where Django asks twice.

    Every transition checks a role permission on a freshly loaded user, so this is one
    query fewer on the hot path. Cached on the user object for the request, as Django does.
    """

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        cached: set[str] | None = getattr(user_obj, _CACHE, None)
        if cached is None:
            fields = ("content_type__app_label", "codename")
            if user_obj.is_superuser:
                rows = Permission.objects.values_list(*fields).order_by()
            else:
                own = Permission.objects.filter(user=user_obj).values_list(*fields).order_by()
                via_groups = Permission.objects.filter(group__user=user_obj).values_list(*fields).order_by()
                rows = own.union(via_groups)
            cached = {f"{app_label}.{codename}" for app_label, codename in rows}
            setattr(user_obj, _CACHE, cached)
        return cached

    async def aget_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        # The same one query and cache as the sync path (Django's async one reads twice).
        return await sync_to_async(self.get_all_permissions)(user_obj, obj)
