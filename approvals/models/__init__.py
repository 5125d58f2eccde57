"""Approval requests: the product built on the workflow engine."""

from approvals.models.api import IdempotentRequest
from approvals.models.discussion import Attachment, Comment
from approvals.models.exports import AuditExport, ExportState
from approvals.models.notification import ActionLinkUse, MailPreference, Notification, OutgoingMail
from approvals.models.requests import (
    FULFILMENT_STATES,
    OPEN_STATES,
    TITLE_MAX,
    ApprovalRequest,
    Decision,
    OnExpiry,
    RequestRevision,
    RevisionContent,
    RouteChange,
    State,
)
from approvals.models.saved_views import SAVED_VIEW_NAME_MAX, SavedView
from approvals.models.tasks import TaskCompletion
from approvals.models.types import PolicyVersion, PublishedPolicyError, RequestType, published_policy

__all__ = [
    "FULFILMENT_STATES",
    "OPEN_STATES",
    "SAVED_VIEW_NAME_MAX",
    "TITLE_MAX",
    "ActionLinkUse",
    "ApprovalRequest",
    "Attachment",
    "AuditExport",
    "Comment",
    "Decision",
    "ExportState",
    "IdempotentRequest",
    "MailPreference",
    "Notification",
    "OnExpiry",
    "OutgoingMail",
    "PolicyVersion",
    "PublishedPolicyError",
    "RequestRevision",
    "RequestType",
    "RevisionContent",
    "RouteChange",
    "SavedView",
    "State",
    "TaskCompletion",
    "published_policy",
]
