"""The Django admin of approvals: request types, their policy versions (drafted as YAML,
checked, published, simulated, drawn), and read-only views of requests with their
revisions and decisions.

Every change of substance goes through approvals.publishing (drafting, publishing) or the
transition service; the admin only collects input and shows what those say.
"""

from approvals.admin.requests import ApprovalRequestAdmin, NotificationAdmin
from approvals.admin.types import RequestTypeAdmin
from approvals.admin.versions import PolicyVersionAdmin

__all__ = ["ApprovalRequestAdmin", "NotificationAdmin", "PolicyVersionAdmin", "RequestTypeAdmin"]
