from django.urls import path

from accounts.api import views

app_name = "accounts"

# ``members/<external_id>`` and ``me`` are served by the loyalty app's views, which extend
# ``MemberDetailView`` and ``MeView`` with the member's standing: one URL, one view.
urlpatterns = [
    path("members", views.MemberListView.as_view(), name="member-list"),
    path("members/<str:external_id>/token", views.MemberTokenView.as_view(), name="member-token"),
]
