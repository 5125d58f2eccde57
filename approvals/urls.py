from django.urls import path

from approvals.views import (
    acting,
    delegations,
    handoffs,
    inbox,
    lists,
    notifications,
    reassign,
    requests,
    team,
)

app_name = "approvals"

urlpatterns = [
    path("", lists.home, name="home"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/act/", inbox.inbox_act, name="inbox_act"),
    path("inbox/views/", inbox.saved_view_create, name="saved_view_create"),
    path("inbox/views/<int:pk>/delete/", inbox.saved_view_delete, name="saved_view_delete"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/read/", notifications.notifications_read, name="notifications_read"),
    path("requests/", lists.my_requests, name="my_requests"),
    path("requests/all/", lists.all_requests, name="all_requests"),
    path("requests/new/", requests.request_new, name="request_new"),
    path("requests/new/<slug:slug>/", requests.request_new_of_type, name="request_new_of_type"),
    path("requests/<int:pk>/", requests.request_detail, name="request_detail"),
    path("requests/<int:pk>/act/", acting.request_action, name="request_action"),
    path("requests/<int:pk>/edit/", requests.request_edit, name="request_edit"),
    path("requests/<int:pk>/comments/", requests.request_comment, name="request_comment"),
    path("files/<int:pk>/", requests.attachment_download, name="attachment_download"),
    path("handoffs/<int:pk>/claim/", handoffs.handoff_claim_view, name="handoff_claim"),
    path("handoffs/<int:pk>/unclaim/", handoffs.handoff_unclaim_view, name="handoff_unclaim"),
    path("requests/<int:pk>/reassign/", reassign.request_reassign, name="request_reassign"),
    path("team/", team.team, name="team"),
    path("team/reassign/", reassign.team_reassign, name="team_reassign"),
    path("delegations/", delegations.delegations, name="delegations"),
    path("delegations/<int:pk>/revoke/", delegations.delegation_revoke_view, name="delegation_revoke"),
]
