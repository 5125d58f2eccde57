"""What a workflow tells webhooks about its items, registered by its app.

The engine cannot import the apps built on it, so an app registers a `WebhookSource` for
its model in AppConfig.ready() (as it registers its `Workflow`): which event types a step
means, what a payload says about an item, who may see it, and its own callback URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflows.models import Handoff, WorkflowModel

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class StepFacts:
    """A transition as webhooks see it: the instance after it, and what happened."""

    instance: WorkflowModel
    action: str
    source: str
    target: str
    actor: User | None
    audit_seq: int
    opened: list[Handoff] = field(default_factory=list)
    occurred_at: datetime | None = None


class WebhookSource:
    """A workflow model's answers to webhooks. The defaults send nothing."""

    def event_types(self, step: StepFacts) -> list[str]:
        """The WebhookEventType values this step is (several may apply, e.g. an action
        taken that also decided the item)."""
        return []

    def snapshot(self, instance: WorkflowModel) -> dict[str, Any]:
        """The item as the step left it, from its own columns only (no query: this runs
        inside every transition). The fan-out task builds payloads from it, so a payload
        tells of the step even when the item has moved on since."""
        return {"ref": instance.workflow_ref(), "state": instance.state, "version": instance.version}

    def data(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """What a payload says about the item, from its `snapshot` (JSON-ready; may query,
        it runs in the fan-out task); no secrets, no foreign data."""
        return dict(snapshot)

    def visible_to(self, instance: WorkflowModel, users: list[User]) -> set[int]:
        """The ids of those `users` who may see `instance` now (its events go only to them)."""
        return set()

    def callback_url(self, instance: WorkflowModel) -> str:
        """The item's own callback URL, or ''."""
        return ""

    def callback_event_types(self) -> frozenset[str]:
        """The event types an item's own callback URL hears about."""
        return frozenset()


_SOURCES: dict[type[WorkflowModel], WebhookSource] = {}


def webhook_source_register(model: type[WorkflowModel], source: WebhookSource) -> None:
    """Make `source` what webhooks know of `model`'s items (call from AppConfig.ready)."""
    _SOURCES[model] = source


def webhook_source_of(model: type[WorkflowModel]) -> WebhookSource | None:
    return _SOURCES.get(model)
