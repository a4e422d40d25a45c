from django.urls import path, re_path

from trading.api import views

ID = r"(?P<order_id>[a-zA-Z0-9_-]+)"

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("trades", views.TradeListView.as_view(), name="trades"),
    re_path(
        r"^trades/(?P<trade_id>[a-zA-Z0-9_-]{1,64})$",
        views.TradeDetailView.as_view(),
        name="trade-detail",
    ),
    path("positions", views.PositionListView.as_view(), name="positions"),
    path("account/info", views.AccountInfoView.as_view(), name="account-info"),
    path("portfolio", views.PortfolioView.as_view(), name="portfolio"),
    path("orders", views.OrderListView.as_view(), name="orders"),
    path("orders/submit", views.OrderSubmitView.as_view(), name="order-submit"),
    re_path(rf"^orders/{ID}$", views.OrderDetailView.as_view(), name="order-detail"),
    path("stop_trading", views.StopTradingView.as_view(), name="stop-trading"),
    path("resume_trading", views.ResumeTradingView.as_view(), name="resume-trading"),
    path("sessions", views.SessionListView.as_view(), name="sessions"),
    path("sessions/start", views.SessionStartView.as_view(), name="session-start"),
    re_path(
        r"^sessions/(?P<session_id>[0-9]{1,18})/stop$",
        views.SessionStopView.as_view(),
        name="session-stop",
    ),
]
