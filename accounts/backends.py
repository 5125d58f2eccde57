"""Authentication backend: Django's ModelBackend, reading permissions in one query."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend

from accounts.access import user_access


class RoleModelBackend(ModelBackend):
    """ModelBackend whose `get_all_permissions` asks once for a person's own and their
    groups' permissions, and their group ids with them (accounts.access), where Django
    asks twice and the group ids cost a third query.

    Every transition checks a role permission on a freshly loaded user, so this is two
    queries fewer on the hot path. Cached on the user object for the request, as Django does.
    """

    def user_can_authenticate(self, user: Any) -> bool:
        # A service account is a machine: it signs in with API tokens only, never a password.
        return super().user_can_authenticate(user) and not getattr(user, "is_service_account", False)

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        return set(user_access(user_obj).permissions)

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        # The frozenset itself, without ModelBackend's copy into a new set per check.
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return False
        return perm in user_access(user_obj).permissions

    async def aget_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        # The same one query and cache as the sync path (Django's async one reads twice).
        return await sync_to_async(self.get_all_permissions)(user_obj, obj)
