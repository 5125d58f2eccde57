"""Approval requests: the product built on the workflow engine."""

from approvals.models.exports import AuditExport, ExportState
from approvals.models.notification import Notification
from approvals.models.requests import (
    OPEN_STATES,
    TITLE_MAX,
    ApprovalRequest,
    Decision,
    RequestRevision,
    RevisionContent,
    RouteChange,
    State,
)
from approvals.models.types import PolicyVersion, PublishedPolicyError, RequestType, published_policy

__all__ = [
    "OPEN_STATES",
    "TITLE_MAX",
    "ApprovalRequest",
    "AuditExport",
    "Decision",
    "ExportState",
    "Notification",
    "PolicyVersion",
    "PublishedPolicyError",
    "RequestRevision",
    "RequestType",
    "RevisionContent",
    "RouteChange",
    "State",
    "published_policy",
]
