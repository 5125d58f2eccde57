"""Domain errors raised by the engine. Each entry point maps them to its own answer
(an HTML message, an RFC 9457 problem, a command's exit code)."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base of every domain error. `code` is stable and machine-readable."""

    code = "workflow_error"
    http_status = 400
    title = "Workflow error"

    def __init__(self, detail: str, *, field_errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field_errors = field_errors or {}


class NotFound(WorkflowError):
    code = "not_found"
    http_status = 404
    title = "Not found"


class TransitionNotAllowed(WorkflowError):
    """The transition is not possible from the item's current state (a conflict)."""

    code = "transition_not_allowed"
    http_status = 409
    title = "Transition not allowed from this state"


class Forbidden(WorkflowError):
    """The actor may not take this action on this item."""

    code = "forbidden"
    http_status = 403
    title = "Forbidden"


class StaleVersion(WorkflowError):
    """The item changed since the caller read it (optimistic lock)."""

    code = "stale_version"
    http_status = 409
    title = "The item changed since you loaded it"


class DuplicateKey(WorkflowError):
    """An idempotency key was reused for a different action."""

    code = "idempotency_key_reused"
    http_status = 422
    title = "Idempotency key already used for a different action"


class InvalidInput(WorkflowError):
    """The input is malformed; `field_errors` names each field and why."""

    code = "invalid_input"
    http_status = 400
    title = "Invalid input"
