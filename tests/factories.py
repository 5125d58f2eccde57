"""Factories for tests: real rows, made through the same services the product uses."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import User
from accounts.roles import APPROVERS, REQUESTERS, roles_sync
from approvals.models import ApprovalRequest, PolicyVersion, RequestType
from approvals.publishing import policy_draft_create, policy_publish
from approvals.services import request_create


class GroupFactory(factory.django.DjangoModelFactory[Group]):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    # Hashed before the insert: a post-generation set_password would never be saved
    # (skip_postgeneration_save), leaving the row without a usable password.
    password = factory.django.Password("pw")

    @factory.post_generation
    def roles(self: User, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        if not create or not extracted:
            return
        groups = roles_sync()
        self.groups.add(*[groups[name] for name in extracted])

    @factory.post_generation
    def member_of(self: User, create: bool, extracted: list[Group] | None, **kwargs: Any) -> None:
        if create and extracted:
            self.groups.add(*extracted)


class RequestTypeFactory(factory.django.DjangoModelFactory[RequestType]):
    """A type reviewed by `approver_group`, which every requester may submit."""

    class Meta:
        model = RequestType
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"type-{n}")
    name = factory.Sequence(lambda n: f"Type {n}")
    # Not a field: the group of the simplest policy, one 'review' stage any member decides.
    approver_group = factory.SubFactory(GroupFactory)

    @factory.post_generation
    def policy(self: RequestType, create: bool, extracted: dict[str, Any] | None, **kwargs: Any) -> None:
        """Publish `policy=<document>`, or a one-stage review by `approver_group`."""
        if not create or self.current_policy_id is not None:
            return
        document = extracted or {
            "stages": [
                {
                    "name": "review",
                    "approvers": {"groups": [self._approver_group.name]},  # type: ignore[attr-defined]
                    "rule": "any",
                }
            ]
        }
        publish_policy(request_type=self, document=document)

    @factory.post_generation
    def open_to_requesters(self: RequestType, create: bool, extracted: bool | None, **kwargs: Any) -> None:
        if create and extracted is not False:
            assign_perm("approvals.submit_requesttype", roles_sync()[REQUESTERS], self)

    @classmethod
    def _create(cls, model_class: type[RequestType], *args: Any, **kwargs: Any) -> RequestType:
        group = kwargs.pop("approver_group", None)
        instance = super()._create(model_class, *args, **kwargs)
        instance._approver_group = group
        return instance


def publish_policy(
    *, request_type: RequestType, document: dict[str, Any], checked: bool = False
) -> PolicyVersion:
    """Make `document` the type's current, published policy.

    Unchecked by default: fixtures make the type before the people its policy names
    (publishing would refuse a group without approvers). `checked=True` goes through
    the real publishing service with all its checks.
    """
    version = policy_draft_create(request_type=request_type, document=document, actor=None, source="test")
    if checked:
        return policy_publish(version=version, actor=None)
    PolicyVersion.objects.filter(pk=version.pk).update(
        status=PolicyVersion.Status.PUBLISHED, published_at=timezone.now()
    )
    RequestType.objects.filter(pk=request_type.pk).update(current_policy=version)
    request_type.current_policy = version
    version.refresh_from_db()
    return version


def make_requester(**kwargs: Any) -> User:
    return UserFactory.create(roles=[REQUESTERS], **kwargs)


def make_approver(group: Group, **kwargs: Any) -> User:
    return UserFactory.create(roles=[APPROVERS], member_of=[group], **kwargs)


def make_request(
    *,
    requester: User,
    request_type: RequestType,
    submit: bool = True,
    title: str = "Buy a desk",
    payload: dict[str, Any] | None = None,
) -> ApprovalRequest:
    return request_create(
        requester=requester, request_type=request_type, title=title, submit=submit, payload=payload
    )
