from django.urls import path

from approvals.consumers import RequestConsumer
from workflows.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/requests/<int:pk>/", RequestConsumer.as_asgi()),
]
