from django.urls import path

from marketdata.api import views

urlpatterns = [
    path("stock-data", views.StockDataView.as_view(), name="stock-data"),
    path("stock-data/<str:symbol>", views.StockDataSymbolView.as_view(), name="stock-data-symbol"),
    path("market-data", views.MarketDataView.as_view(), name="market-data"),
    path(
        "market_data/<str:symbol>", views.MarketDataSymbolView.as_view(), name="market-data-symbol"
    ),
    path("chart-data", views.ChartDataView.as_view(), name="chart-data"),
]
