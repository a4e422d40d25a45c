from django.urls import path

from trading.api import views

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("trades", views.TradeListView.as_view(), name="trades"),
    path("positions", views.PositionListView.as_view(), name="positions"),
]
