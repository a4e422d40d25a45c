"""Every /api/v1/ route, mounted again under the WordPress prefix by tradingrobot.urls."""

from django.urls import include, path

from tradingrobot.api.views import CachedStatusView, DashboardOverviewView, HealthView

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    # trading.api's StatusView with its body cached ~1 s (see CachedStatusView); listed before
    # the app's own "status" route, which it wraps, so it wins the URL resolution.
    path("status", CachedStatusView.as_view(), name="status"),
    path("dashboard/overview", DashboardOverviewView.as_view(), name="dashboard-overview"),
    path("", include("trading.api.urls")),
    path("", include("marketdata.api.urls")),
    path("", include("streaming.api.urls")),
    path("", include("strategies.api.urls")),
]
