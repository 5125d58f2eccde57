"""The request of the Viewflow flow: a proxy of Viewflow's Process, its fields in Process.data.

This is how Viewflow 2's own samples model a process (jsonstore fields on a proxy model),
so a request is one row of `viewflow_process`, as a Baton request is one row of its table.
"""

from __future__ import annotations

from viewflow import jsonstore
from viewflow.workflow.models import Process


class ApprovalProcess(Process):
    title = jsonstore.CharField(max_length=200)
    payload = jsonstore.JSONField(default=dict)
    approved = jsonstore.BooleanField(default=False)

    class Meta:
        proxy = True
        permissions = [
            ("submit_approvalprocess", "Can submit an approval request"),
            ("approve_approvalprocess", "Can approve an approval request"),
        ]
