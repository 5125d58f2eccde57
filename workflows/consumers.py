"""WebSocket consumers. They only relay what the service decided and committed.

Every message carries the outbox event id; clients de-duplicate by it, because
delivery is at least once.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from workflows.models import Recipient
from workflows.permissions import user_group_ids


class RelayConsumer(AsyncJsonWebsocketConsumer):
    """Base: joins the groups `groups_for_connection` names and forwards relay events."""

    joined: list[str]

    async def groups_for_connection(self) -> list[str] | None:
        """The channel groups to join, or None to refuse the connection (the default:
        a consumer serves no one until it says whom)."""
        return None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        groups = await self.groups_for_connection()
        if groups is None:
            await self.close(code=4403)
            return
        self.joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "ready", "groups": len(groups)})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Clients only listen; a ping keeps proxies from closing an idle socket.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def relay_event(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "event", "event": message["event"]})


class InboxConsumer(RelayConsumer):
    """/ws/inbox/: everything that changes the connected user's or their groups' inboxes."""

    async def groups_for_connection(self) -> list[str] | None:
        user = self.scope["user"]
        group_ids = await database_sync_to_async(user_group_ids)(user)
        recipients = [Recipient(user_id=user.pk)] + [Recipient(group_id=g) for g in sorted(group_ids)]
        return [r.channel_group for r in recipients]
