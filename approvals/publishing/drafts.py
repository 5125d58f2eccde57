"""Drafting, checking, publishing and simulating approval policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import User
from approvals.models import PolicyVersion, RequestType
from approvals.publishing.lookups import version_label
from approvals.route import route_simulate, users_who_may_decide
from approvals.routing import Person, Policy, PolicyError, Route, policy_parse, policy_problems
from approvals.schemas import schema_problems
from workflows import errors


class DatabaseDirectory:
    """The policy checker's view of this installation's people and groups."""

    def user(self, name: str) -> Person | None:
        found = User.objects.filter(username=name, is_active=True).first()
        if found is None:
            return None
        return Person(id=found.pk, name=found.username, may_decide=bool(users_who_may_decide([found.pk])))

    def group_members(self, name: str) -> list[Person] | None:
        group = Group.objects.filter(name=name).first()
        if group is None:
            return None
        members = list(User.objects.filter(groups=group, is_active=True).order_by("username"))
        deciders = users_who_may_decide(m.pk for m in members)
        return [Person(id=m.pk, name=m.username, may_decide=m.pk in deciders) for m in members]


def document_problems(*, document: Any, schema: Any) -> list[str]:
    """Every reason not to publish `document` as a policy for a type with `schema`."""
    problems = [f"payload schema: {p}" for p in schema_problems(schema)]
    try:
        policy = policy_parse(document)
    except PolicyError as exc:
        return problems + exc.problems
    return problems + policy_problems(policy, schema=schema or {}, directory=DatabaseDirectory())


def version_problems(version: PolicyVersion) -> list[str]:
    return document_problems(document=version.document, schema=version.request_type.payload_schema)


def policy_draft_create(
    *, request_type: RequestType, document: Any, actor: User | None, source: str = "admin"
) -> PolicyVersion:
    """A new draft version numbered after the type's last one. The document must at least
    read as a policy (PolicyError otherwise); whether it may be published is checked then."""
    policy_parse(document)
    with transaction.atomic():
        # Lock the type so two drafts made at once get different numbers.
        RequestType.objects.select_for_update().get(pk=request_type.pk)
        last = request_type.policy_versions.aggregate(n=Max("number"))["n"] or 0
        return PolicyVersion.objects.create(
            request_type=request_type, number=last + 1, document=document, source=source, created_by=actor
        )


def policy_publish(*, version: PolicyVersion, actor: User | None) -> PolicyVersion:
    """Publish a draft: it becomes the version new submissions of its type follow.

    Raises InvalidInput listing every problem (nothing changes then). Published versions
    never change afterwards; requests already submitted keep their version.
    """
    with transaction.atomic():
        request_type = RequestType.objects.select_for_update().get(pk=version.request_type_id)
        version = PolicyVersion.objects.select_related("request_type").get(pk=version.pk)
        if version.is_published:
            raise errors.TransitionNotAllowed(f"{version} is already published.")
        problems = version_problems(version)
        if problems:
            raise errors.InvalidInput(
                f"{version} cannot be published: {len(problems)} problem(s).",
                field_errors={"document": problems},
            )
        # update(), not save(): the model refuses saves of published versions.
        PolicyVersion.objects.filter(pk=version.pk).update(
            status=PolicyVersion.Status.PUBLISHED, published_at=timezone.now(), published_by=actor
        )
        request_type.current_policy_id = version.pk
        request_type.save(update_fields=["current_policy"])
        version.refresh_from_db()
        return version


def policy_simulate(*, policy: Policy, payload: dict[str, Any], requester: User) -> Route:
    """The route a request would take; see approvals.stages.route_simulate."""
    return route_simulate(policy=policy, payload=payload, requester=requester)


@dataclass
class CheckResult:
    """The publish-time problems of one version or file; `where` names it in reports."""

    where: str
    problems: list[str] = field(default_factory=list)
    slug: str = ""

    def lines(self) -> list[str]:
        return [f"{self.where}: {problem}" for problem in self.problems]


def versions_to_check(*, request_type: RequestType | None = None) -> list[PolicyVersion]:
    """Each type's current version and every draft, of one type or of all."""
    types = (
        RequestType.objects.all() if request_type is None else RequestType.objects.filter(pk=request_type.pk)
    )
    wanted = PolicyVersion.objects.filter(
        Q(pk__in=types.filter(current_policy__isnull=False).values("current_policy"))
        | Q(request_type__in=types, status=PolicyVersion.Status.DRAFT)
    )
    return list(wanted.select_related("request_type").order_by("request_type__slug", "number"))


def versions_check(*, request_type: RequestType | None = None) -> list[CheckResult]:
    return [
        CheckResult(where=version_label(v), problems=version_problems(v), slug=v.request_type.slug)
        for v in versions_to_check(request_type=request_type)
    ]
