from django.urls import path

from rewards.api import referrals, views

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
    path(
        "members/<str:external_id>/referral",
        referrals.MemberReferralView.as_view(),
        name="member-referral",
    ),
    path(
        "members/<str:external_id>/referral/code",
        referrals.MemberReferralCodeView.as_view(),
        name="member-referral-code",
    ),
    path(
        "members/<str:external_id>/invitees",
        referrals.MemberInviteeListView.as_view(),
        name="member-invitees",
    ),
    path("me/referral", referrals.MeReferralView.as_view(), name="me-referral"),
    path("me/referral/code", referrals.MeReferralCodeView.as_view(), name="me-referral-code"),
    path("me/invitees", referrals.MeInviteeListView.as_view(), name="me-invitees"),
    path("me/rewards", views.MeRewardListView.as_view(), name="me-rewards"),
    path("me/redemptions", views.MeRedemptionView.as_view(), name="me-redemptions"),
]
