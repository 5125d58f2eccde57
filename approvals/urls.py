from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.home, name="home"),
    path("inbox/", views.inbox, name="inbox"),
    path("requests/", views.my_requests, name="my_requests"),
    path("requests/all/", views.all_requests, name="all_requests"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/new/<slug:slug>/", views.request_new_of_type, name="request_new_of_type"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/act/", views.request_action, name="request_action"),
    path("handoffs/<int:pk>/claim/", views.handoff_claim_view, name="handoff_claim"),
    path("handoffs/<int:pk>/unclaim/", views.handoff_unclaim_view, name="handoff_unclaim"),
]
