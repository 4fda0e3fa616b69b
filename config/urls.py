from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api.errors import json_bad_request, json_not_found, json_server_error

# Each path is served by one view of one app (no app's path shadows another's).
api_v1 = [
    path("", include("rewards.api.urls")),
    path("", include("loyalty.api.urls")),
    path("", include("accounts.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The admin's language switcher posts here (Django's set_language).
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(api_v1)),
    # The member center: pages a host app opens from a signed link (docs/member-center.md).
    path("m/mall/", include("rewards.center")),
    path("m/invite/", include("rewards.referrals.center")),
    path("m/", include("loyalty.center.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Any other path under /api/ answers in the API's error shape, DEBUG or not (with DEBUG on,
    # Django would answer its HTML debug page instead of ``handler404``).
    re_path(r"^api/", json_not_found),
]


def handler400(request, exception=None):
    if request.path.startswith("/api/"):
        return json_bad_request(request, exception)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return json_server_error(request)
    from django.views.defaults import server_error

    return server_error(request)
