from django.urls import path

from accounts.api import views

app_name = "accounts"

urlpatterns = [
    path("members", views.MemberListView.as_view(), name="member-list"),
    path("members/<str:external_id>", views.MemberDetailView.as_view(), name="member-detail"),
    path("members/<str:external_id>/token", views.MemberTokenView.as_view(), name="member-token"),
    path("me", views.MeView.as_view(), name="me"),
]
