"""HTML forms of the approvals pages (validation of business rules stays in the services;
these turn posted text into typed values and carry the services' errors back)."""

from approvals.forms.lists import (
    BulkActionForm,
    CommentForm,
    InboxFilterForm,
    MyRequestsFilterForm,
    RequestFilterForm,
    SavedViewForm,
)
from approvals.forms.payload import (
    DraftForm,
    RequestActionForm,
    RequestCreateForm,
    ServiceErrorsMixin,
    TaskForm,
    payload_fields,
)

__all__ = [
    "BulkActionForm",
    "CommentForm",
    "DraftForm",
    "InboxFilterForm",
    "MyRequestsFilterForm",
    "RequestActionForm",
    "RequestCreateForm",
    "RequestFilterForm",
    "SavedViewForm",
    "ServiceErrorsMixin",
    "TaskForm",
    "payload_fields",
]
