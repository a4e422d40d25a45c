"""Bench-only URLs: the real ones plus /bench/minimal, a DRF view with no auth and no query."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class MinimalView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("bench/minimal", MinimalView.as_view()),
    path("", include("tradingrobot.urls")),
]
