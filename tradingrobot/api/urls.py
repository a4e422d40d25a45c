"""Every /api/v1/ route, mounted again under the WordPress prefix by tradingrobot.urls."""

from django.urls import include, path

from tradingrobot.api.views import DashboardOverviewView, HealthView

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("dashboard/overview", DashboardOverviewView.as_view(), name="dashboard-overview"),
    path("", include("trading.api.urls")),
    path("", include("marketdata.api.urls")),
    path("", include("streaming.api.urls")),
    path("", include("strategies.api.urls")),
    path("", include("strategies.research.urls")),
    path("", include("audit.api.urls")),
]
