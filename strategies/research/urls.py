from django.urls import path, re_path

from strategies.research import api

ID = r"(?P<id>[a-zA-Z0-9_-]+)"

urlpatterns = [
    re_path(
        rf"^strategies/{ID}/optimize$", api.StrategyOptimizeView.as_view(), name="strategy-optimize"
    ),
    re_path(
        rf"^strategies/{ID}/indicators$",
        api.StrategyIndicatorsView.as_view(),
        name="strategy-indicators",
    ),
    path("research/runs", api.ResearchRunListView.as_view(), name="research-runs"),
    re_path(rf"^research/runs/{ID}$", api.ResearchRunDetailView.as_view(), name="research-run"),
    re_path(
        rf"^research/runs/{ID}/cancel$",
        api.ResearchRunCancelView.as_view(),
        name="research-run-cancel",
    ),
]
