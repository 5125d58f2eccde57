"""Finding request types, versions and people by the names the admin and the commands use."""

from __future__ import annotations

from accounts.models import User
from approvals.models import PolicyVersion, RequestType
from workflows import errors
from workflows.services import SYSTEM, SystemActor


def version_label(version: PolicyVersion) -> str:
    """How a version is named in reports: 'expense v3' (the slug, as in the files)."""
    return f"{version.request_type.slug} v{version.number}"


def request_type_find(*, slug: str) -> RequestType:
    """The request type with `slug`; NotFound naming the types there are."""
    found = RequestType.objects.filter(slug=slug).first()
    if found is None:
        known = ", ".join(RequestType.objects.order_by("slug").values_list("slug", flat=True)) or "none"
        raise errors.NotFound(f"There is no request type '{slug}' (types: {known}).")
    return found


def policy_version_find(*, request_type: RequestType, number: int | None = None) -> PolicyVersion:
    """Version `number` of the type, or its current (published) version when no number is given."""
    if number is None:
        if request_type.current_policy_id is None:
            raise errors.NotFound(f"{request_type.slug} has no published policy yet.")
        return PolicyVersion.objects.select_related("request_type").get(pk=request_type.current_policy_id)
    found = request_type.policy_versions.select_related("request_type").filter(number=number).first()
    if found is None:
        numbers = ", ".join(
            str(n) for n in request_type.policy_versions.order_by("number").values_list("number", flat=True)
        )
        raise errors.NotFound(f"{request_type.slug} has no version {number} (versions: {numbers or 'none'}).")
    return found


def person_find(*, username: str) -> User:
    found = User.objects.filter(username=username, is_active=True).first()
    if found is None:
        raise errors.NotFound(f"There is no active user '{username}'.")
    return found


def policy_mover(*, username: str | None) -> User | SystemActor:
    """Who moves requests to another version: the system, or a named active superuser
    (the same rule the transition checks per request, asked once up front)."""
    if not username:
        return SYSTEM
    user = person_find(username=username)
    if not user.is_superuser:
        raise errors.Forbidden(
            f"'{username}' is not a superuser: only superusers move requests between versions."
        )
    return user
