"""WebSocket consumer for one request's page: relays its committed changes."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from approvals import policies
from approvals.models import ApprovalRequest
from workflows.consumers import LiveConsumer
from workflows.services import instance_channel_group
from workflows.subscriptions import Subscription, delegation_next_edge


class RequestConsumer(LiveConsumer):
    """/ws/requests/<pk>/: only for people who may see the request, and only while they may."""

    def subscription_for(self, user: Any) -> Subscription | None:
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        request = ApprovalRequest.objects.filter(pk=pk).first()
        if request is None or not policies.may_view(request, user):
            return None
        # Who may view can change with a delegation starting or ending on its own.
        edge = delegation_next_edge(user_id=user.pk, now=timezone.now())
        return Subscription(streams=[instance_channel_group(request)], next_edge=edge)
