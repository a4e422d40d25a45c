from django.urls import path

from streaming.api import views

urlpatterns = [
    path("websocket/token", views.WebSocketTokenView.as_view(), name="websocket-token"),
    path("dashboard/snapshot", views.DashboardSnapshotView.as_view(), name="dashboard-snapshot"),
]
