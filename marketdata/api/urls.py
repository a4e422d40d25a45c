from django.urls import path

from marketdata.api import views

urlpatterns = [
    path("stock-data", views.StockDataView.as_view(), name="stock-data"),
]
