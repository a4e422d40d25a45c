from django.urls import path

from streaming.api import views

urlpatterns = [
    path("websocket/token", views.WebSocketTokenView.as_view(), name="websocket-token"),
]
