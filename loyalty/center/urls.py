from django.urls import path

from loyalty.center import views

app_name = "member-center"

urlpatterns = [
    path("enter", views.enter, name="enter"),
    path("", views.home, name="home"),
]
