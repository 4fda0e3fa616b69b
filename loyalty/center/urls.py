from django.urls import path

from loyalty.center import views

app_name = "member-center"

urlpatterns = [
    path("enter", views.enter, name="enter"),
    path("", views.home, name="home"),
    path("check-in/", views.check_in, name="check-in"),
    path("check-in/<slug:code>", views.check_in_post, name="check-in-post"),
    path("tasks/", views.tasks, name="tasks"),
    path("badges/", views.badges, name="badges"),
    path("badges/<slug:code>/sharing", views.badge_sharing, name="badge-sharing"),
    path("badge/<slug:slug>", views.shared_badge, name="shared-badge"),
    path("leaderboards/", views.leaderboards, name="leaderboards"),
    path("leaderboards/opt", views.leaderboards_opt, name="leaderboards-opt"),
    path("history/", views.history, name="history"),
]
