from django.urls import path, re_path

from strategies.api import views
from strategies.research.api import StrategyBacktestJobView

ID = r"(?P<id>[a-zA-Z0-9_-]+)"

urlpatterns = [
    path("strategies", views.StrategyListView.as_view(), name="strategies"),
    path("strategies/reload", views.StrategyReloadView.as_view(), name="strategies-reload"),
    re_path(rf"^strategies/{ID}$", views.StrategyDetailView.as_view(), name="strategy-detail"),
    re_path(
        rf"^strategies/{ID}/execute$", views.StrategyExecuteView.as_view(), name="strategy-execute"
    ),
    re_path(
        rf"^strategies/{ID}/backtest$",
        StrategyBacktestJobView.as_view(),  # a research run: 202 + the run's URL
        name="strategy-backtest",
    ),
    path("performance", views.PerformanceView.as_view(), name="performance"),
]
