from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard(request):
    from trading.permissions import user_can_trade

    context = {"symbols": settings.PRIMARY_SYMBOLS, "can_trade": user_can_trade(request.user)}
    return render(request, "dashboard.html", context)
