from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from tradingrobot import views
from tradingrobot.api import aliases
from tradingrobot.api.schema import document_views

# SimpleAdminConfig (settings) leaves admin discovery to the processes that serve URLs.
admin.autodiscover()
document_views()

# The Trading Robot API paths the WordPress plugin speaks; the same services as /api/v1/.
alias_patterns = [
    path("status", aliases.AliasStatusView.as_view(), name="status"),
    path("portfolio", aliases.AliasPortfolioView.as_view(), name="portfolio"),
    re_path(
        r"^market_data/(?P<symbol>[A-Za-z0-9._-]+)$",
        aliases.AliasMarketDataView.as_view(),
        name="market-data",
    ),
    re_path(
        r"^trade/(?P<symbol>[A-Za-z0-9._-]+)/(?P<side>[A-Za-z0-9_-]+)$",
        aliases.AliasTradeView.as_view(),
        name="trade",
    ),
    path("stop_trading", aliases.AliasStopTradingView.as_view(), name="stop-trading"),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The schema and its docs page are public: they describe the API, they expose no data.
    path(
        "api/v1/schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="schema", authentication_classes=[], permission_classes=[AllowAny]
        ),
        name="api-docs",
    ),
    path("api/v1/", include(("tradingrobot.api.urls", "api"), namespace="v1")),
    path("wp-json/tradingrobotplug/v1/", include(("tradingrobot.api.urls", "api"), namespace="wp")),
    path("api/", include((alias_patterns, "aliases"), namespace="aliases")),
]

handler400 = "tradingrobot.api.errors.handler400"
handler403 = "tradingrobot.api.errors.handler403"
handler404 = "tradingrobot.api.errors.handler404"
handler500 = "tradingrobot.api.errors.handler500"
