"""WebSocket consumer for one request's page: relays its committed changes."""

from __future__ import annotations

from channels.db import database_sync_to_async

from approvals import policies
from approvals.models import ApprovalRequest
from workflows.consumers import RelayConsumer
from workflows.services import instance_channel_group


def _group_if_visible(user: object, pk: int) -> list[str] | None:
    request = ApprovalRequest.objects.filter(pk=pk).first()
    if request is None or not policies.may_view(request, user):  # type: ignore[arg-type]
        return None
    return [instance_channel_group(request)]


class RequestConsumer(RelayConsumer):
    """/ws/requests/<pk>/: only for people who may see the request."""

    async def groups_for_connection(self) -> list[str] | None:
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        return await database_sync_to_async(_group_if_visible)(self.scope["user"], pk)
