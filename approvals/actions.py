"""Every action on a request, by name, with the words people read for it.

The one list of action names: pages, notifications, policies, the lifecycle and the API
use these members, never bare strings. What each lifecycle action means (its checks,
its route change, its effects) is in approvals/lifecycle/, found from the same name.
"""

from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    """Value: the name recorded in the audit trail. Label: the button."""

    CREATE = "create", "Create"
    SUBMIT = "submit", "Submit for review"
    EDIT = "edit", "Save the draft"
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Ask for changes"
    RESUBMIT = "resubmit", "Resubmit"
    WITHDRAW = "withdraw", "Withdraw"
    CANCEL = "cancel", "Cancel request"
    # Only the system takes it (approvals.expiry), when nobody decided in time.
    EXPIRE = "expire", "Expire"
    COMPLETE = "complete", "Mark the task done"
    HAND_BACK = "hand_back", "Cannot be done"
    MOVE_POLICY = "move_policy", "Move to another policy version"
    COMMENT = "comment", "Comment"
    ATTACH = "attach", "Add files"
    CLAIM = "claim", "Claim"
    UNCLAIM = "unclaim", "Release"
    REASSIGN = "reassign", "Reassign"
    # The system's own: a stage's SLA ran out and its policy decides for it (approvals.timers).
    TIME_OUT = "time_out", "Decide automatically when overdue"

    @property
    def done(self) -> str:
        """What the history says someone did: 'approved', 'asked for changes'."""
        return _DONE[self]

    @property
    def news(self) -> str:
        """How a mail reports it of the request: 'was approved', 'needs changes'."""
        return _NEWS.get(self, f"had '{self.label}'")

    @property
    def comment_required(self) -> str:
        """Why a comment must go with it, or '' when none is needed."""
        return _COMMENT_REQUIRED.get(self, "")

    @property
    def is_decision(self) -> bool:
        return self in DECISIONS

    @property
    def is_irreversible(self) -> bool:
        """Pages confirm these before they are sent."""
        return self in {Action.REJECT, Action.WITHDRAW, Action.CANCEL, Action.HAND_BACK}

    @classmethod
    def named(cls, name: str) -> Action | None:
        try:
            return cls(name)
        except ValueError:
            return None


DECISIONS = (Action.APPROVE, Action.REJECT, Action.REQUEST_CHANGES)
# The lifecycle actions a person takes on a request's page (or through the API), in the
# order they are offered. Moving a request between policy versions is an administrator's
# step of its own (approvals.publishing); claims and reassignments change holders only.
OFFERED = (
    Action.SUBMIT,
    Action.EDIT,
    Action.APPROVE,
    Action.REJECT,
    Action.REQUEST_CHANGES,
    Action.COMPLETE,
    Action.HAND_BACK,
    Action.RESUBMIT,
    Action.WITHDRAW,
    Action.CANCEL,
)
TASK_ACTIONS = (Action.COMPLETE, Action.HAND_BACK)
# What the inbox does to many items at once.
BULK_ACTIONS = (Action.APPROVE, Action.REJECT, Action.REQUEST_CHANGES, Action.CLAIM)
# Offered by a form of their own on the request's page, not by a button of the action form.
OWN_FORM_ACTIONS = (*TASK_ACTIONS, Action.EDIT)
# The actions that (re-)enter the route from its first stage: what follows them is the
# request's current way through its policy.
ROUTE_STARTS = (Action.SUBMIT, Action.RESUBMIT, Action.MOVE_POLICY)

_DONE = {
    Action.CREATE: "created",
    Action.SUBMIT: "submitted",
    Action.EDIT: "edited the draft",
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.REQUEST_CHANGES: "asked for changes",
    Action.RESUBMIT: "resubmitted",
    Action.WITHDRAW: "withdrew",
    Action.CANCEL: "cancelled",
    Action.EXPIRE: "expired",
    Action.COMPLETE: "completed a task",
    Action.HAND_BACK: "handed a task back",
    Action.MOVE_POLICY: "moved to another policy version",
    Action.COMMENT: "commented",
    Action.ATTACH: "added files",
    Action.CLAIM: "claimed",
    Action.UNCLAIM: "released",
    Action.REASSIGN: "reassigned",
    Action.TIME_OUT: "decided automatically when the stage ran out of time",
}
_NEWS = {
    Action.SUBMIT: "was submitted for review",
    Action.RESUBMIT: "was resubmitted after changes",
    Action.APPROVE: "was approved",
    Action.REJECT: "was rejected",
    Action.REQUEST_CHANGES: "needs changes",
    Action.WITHDRAW: "was withdrawn",
    Action.CANCEL: "was cancelled",
    Action.EXPIRE: "expired without a decision",
    Action.COMPLETE: "had a task completed",
    Action.HAND_BACK: "had a task handed back",
    Action.MOVE_POLICY: "was moved to another version of its policy",
    Action.COMMENT: "has a new comment",
    Action.ATTACH: "has new files",
    Action.TIME_OUT: "was decided automatically when a stage ran out of time",
}
_COMMENT_REQUIRED = {
    Action.REJECT: "Say why you reject it.",
    Action.REQUEST_CHANGES: "Say what should change.",
    Action.HAND_BACK: "Say why it cannot be done.",
    Action.CANCEL: "Say why you cancel it.",
}


def action_done(name: str) -> str:
    """The history's verb for an audit entry's action name (also for names not listed)."""
    action = Action.named(name)
    return action.done if action is not None else name.replace("_", " ")
