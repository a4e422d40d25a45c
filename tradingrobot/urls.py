from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tradingrobot import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("tradingrobot.api.urls", "api"), namespace="v1")),
    path("wp-json/tradingrobotplug/v1/", include(("tradingrobot.api.urls", "api"), namespace="wp")),
]

handler400 = "tradingrobot.api.errors.handler400"
handler403 = "tradingrobot.api.errors.handler403"
handler404 = "tradingrobot.api.errors.handler404"
handler500 = "tradingrobot.api.errors.handler500"
