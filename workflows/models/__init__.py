"""The engine's tables: the abstract workflow model, handoffs, the audit trail, the outbox,
webhooks.

Nothing here changes state on its own: `workflows.services` is the one writer.
"""

from workflows.models.audit import AppendOnlyError, AuditEntry, AuditEntryQuerySet
from workflows.models.base import (
    DueRule,
    HandoffSpec,
    Recipient,
    TaskSpec,
    TimerState,
    WorkflowEffects,
    WorkflowModel,
)
from workflows.models.checkpoint import AuditCheckpoint, AuditCheckpointHead
from workflows.models.handoffs import Handoff, HandoffQuerySet
from workflows.models.outbox import IdempotencyKey, OutboxEvent
from workflows.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEventType,
    WebhookFanout,
    WebhookSecret,
    WebhookSubscription,
)

__all__ = [
    "AppendOnlyError",
    "AuditCheckpoint",
    "AuditCheckpointHead",
    "AuditEntry",
    "AuditEntryQuerySet",
    "DueRule",
    "Handoff",
    "HandoffQuerySet",
    "HandoffSpec",
    "IdempotencyKey",
    "OutboxEvent",
    "Recipient",
    "TaskSpec",
    "TimerState",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEventType",
    "WebhookFanout",
    "WebhookSecret",
    "WebhookSubscription",
    "WorkflowEffects",
    "WorkflowModel",
]
