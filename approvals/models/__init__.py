"""Approval requests: the product built on the workflow engine."""

from approvals.models.notification import Notification
from approvals.models.requests import (
    DECISIONS,
    OPEN_STATES,
    TITLE_MAX,
    ApprovalRequest,
    Decision,
    RequestRevision,
    State,
)
from approvals.models.types import PolicyVersion, PublishedPolicyError, RequestType, published_policy

__all__ = [
    "DECISIONS",
    "OPEN_STATES",
    "TITLE_MAX",
    "ApprovalRequest",
    "Decision",
    "Notification",
    "PolicyVersion",
    "PublishedPolicyError",
    "RequestRevision",
    "RequestType",
    "State",
    "published_policy",
]
