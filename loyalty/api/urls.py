from django.urls import path

from loyalty.api import gamification, segments, views

app_name = "loyalty"

urlpatterns = [
    path("events", views.EventView.as_view(), name="events"),
    path("events/batch", views.EventBatchView.as_view(), name="event-batch"),
    path("events/batch/<uuid:job_id>", views.EventBatchJobView.as_view(), name="event-batch-job"),
    path("events/<int:event_id>", views.EventDetailView.as_view(), name="event-detail"),
    path("events/<int:event_id>/reverse", views.EventReverseView.as_view(), name="event-reverse"),
    path("members/<str:external_id>", views.MemberSummaryView.as_view(), name="member-summary"),
    path(
        "members/<str:external_id>/ledger", views.MemberLedgerView.as_view(), name="member-ledger"
    ),
    path(
        "members/<str:external_id>/adjustments",
        views.MemberAdjustmentView.as_view(),
        name="member-adjustments",
    ),
    path(
        "members/<str:external_id>/export", views.MemberExportView.as_view(), name="member-export"
    ),
    path("members/<str:external_id>/erase", views.MemberEraseView.as_view(), name="member-erase"),
    path("segments", segments.SegmentListView.as_view(), name="segments"),
    path(
        "segments/<slug:code>/members",
        segments.SegmentMembersView.as_view(),
        name="segment-members",
    ),
    path("reports/liability", views.LiabilityReportView.as_view(), name="liability-report"),
    path(
        "members/<str:external_id>/badges",
        gamification.MemberBadgesView.as_view(),
        name="member-badges",
    ),
    path(
        "members/<str:external_id>/quests",
        gamification.MemberQuestsView.as_view(),
        name="member-quests",
    ),
    path(
        "members/<str:external_id>/streaks",
        gamification.MemberStreaksView.as_view(),
        name="member-streaks",
    ),
    path("leaderboards", gamification.LeaderboardListView.as_view(), name="leaderboards"),
    path("leaderboards/<slug:code>", gamification.LeaderboardView.as_view(), name="leaderboard"),
    path("me/badges", gamification.MeBadgesView.as_view(), name="me-badges"),
    path("me/quests", gamification.MeQuestsView.as_view(), name="me-quests"),
    path("me/streaks", gamification.MeStreaksView.as_view(), name="me-streaks"),
    path("me", views.MeSummaryView.as_view(), name="me"),
    path("me/ledger", views.MeLedgerView.as_view(), name="me-ledger"),
]
