from django.urls import path, re_path

from approvals.consumers import RequestConsumer
from workflows.consumers import InboxConsumer, NotFoundConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/requests/<int:pk>/", RequestConsumer.as_asgi()),
    # Anything else is closed with 4404, never a routing error (an HTTP 500).
    re_path(r"", NotFoundConsumer.as_asgi()),
]
