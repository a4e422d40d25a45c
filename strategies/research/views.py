"""The research pages (browser): a form and the run list, and one run's result. Thin: the
pages read and submit through the API with the session, as the dashboard does."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from strategies import registry
from strategies.research import selectors
from strategies.research.exceptions import RunNotFound
from strategies.research.grid import OBJECTIVES


@login_required
def research_page(request):
    plugins = [
        {"name": p["name"], "params": p["params_schema"], "defaults": p["defaults"]}
        for p in registry.plugins_describe()
        if p["name"] and not p["load_error"]
    ]
    return render(
        request,
        "research/index.html",
        {
            "plugins": plugins,
            "symbols": ",".join(settings.PRIMARY_SYMBOLS[:1]),
            "objectives": list(OBJECTIVES),
            "cash": settings.PAPER_STARTING_CASH,
        },
    )


@login_required
def research_run_page(request, id):
    try:
        run = selectors.run_get(id)
    except RunNotFound:
        raise Http404("no such research run") from None
    return render(request, "research/run.html", {"run": run})
