"""Request types and their approval policy versions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from approvals.routing import Policy, policy_parse


class RequestType(models.Model):
    """A kind of request people can submit: its payload schema and its current policy.

    Who may submit a type is an object permission (`submit_requesttype`, via
    django-guardian) given to users or groups. `current_policy` is the published version
    new submissions follow; it changes only by publishing (approvals.policy_admin).
    """

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    payload_schema = models.JSONField(
        default=dict,
        blank=True,
        help_text="A JSON Schema (type: object) describing the fields a request of this type carries.",
    )
    current_policy = models.ForeignKey(
        "PolicyVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Set by publishing a policy version.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        permissions = [("submit_requesttype", "Can submit requests of this type")]

    def __str__(self) -> str:
        return self.name


class PublishedPolicyError(Exception):
    """Raised when code tries to change or delete a published policy version."""


def document_checksum(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PolicyVersionQuerySet(models.QuerySet["PolicyVersion"]):
    """Bulk writes keep the promise of save() and delete(): published versions never change."""

    def _refuse_published(self, what: str) -> None:
        published = self.filter(status=PolicyVersion.Status.PUBLISHED).first()
        if published is not None:
            raise PublishedPolicyError(f"{published} is published: it cannot be {what}.")

    def update(self, **kwargs: Any) -> int:
        self._refuse_published("changed")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._refuse_published("deleted")
        return super().delete()


class PolicyVersion(models.Model):
    """One version of a request type's approval policy: a document of ordered stages.

    Drafts may be edited; published versions never change (save and delete refuse), and
    every request keeps the version it was submitted under.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    request_type = models.ForeignKey(RequestType, on_delete=models.PROTECT, related_name="policy_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    document = models.JSONField(help_text="The policy: options and an ordered list of stages.")
    checksum = models.CharField(max_length=64, editable=False)
    source = models.CharField(
        max_length=300, blank=True, help_text="Where it came from: a file, or the admin."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        ordering = ["request_type", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["request_type", "number"], name="policy_version_number"),
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(published_at__isnull=False),
                name="policy_version_published_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_type} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if (
            self.pk is not None
            and PolicyVersion.objects.filter(pk=self.pk, status=self.Status.PUBLISHED).exists()
        ):
            raise PublishedPolicyError(f"{self} is published: publish a new version instead of changing it.")
        self.checksum = document_checksum(self.document)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.is_published:
            raise PublishedPolicyError(f"{self} is published: requests were routed by it, it stays.")
        return super().delete(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def policy(self) -> Policy:
        """The parsed document (raises PolicyError when a draft cannot be read)."""
        if self.is_published and self.pk is not None:
            return published_policy(self.pk, self.document, checksum=self.checksum)
        return policy_parse(self.document)


_PUBLISHED: dict[tuple[int, str], Policy] = {}


def published_policy(version_id: int, document: Any, *, checksum: str = "") -> Policy:
    """The parsed policy of a published version, parsed once per process (it never changes).

    Keyed by id and checksum: an id alone can come back for another document when the
    transaction that made a version rolls back (SQLite reuses the id), and the cache must
    never answer with another version's policy.
    """
    key = (version_id, checksum or document_checksum(document))
    policy = _PUBLISHED.get(key)
    if policy is None:
        policy = _PUBLISHED[key] = policy_parse(document)
    return policy
