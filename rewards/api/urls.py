from django.urls import path

from rewards.api import views

app_name = "rewards"

urlpatterns = [
    path("rewards", views.RewardListView.as_view(), name="rewards"),
    path("redemptions", views.RedemptionCreateView.as_view(), name="redemptions"),
    path(
        "redemptions/<int:redemption_id>/cancel",
        views.RedemptionCancelView.as_view(),
        name="redemption-cancel",
    ),
    path(
        "members/<str:external_id>/redemptions",
        views.MemberRedemptionListView.as_view(),
        name="member-redemptions",
    ),
    path("me/rewards", views.MeRewardListView.as_view(), name="me-rewards"),
    path("me/redemptions", views.MeRedemptionView.as_view(), name="me-redemptions"),
]
