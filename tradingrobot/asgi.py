from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
# Django must be set up before the consumers (and the models they import) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware, SessionMiddleware  # noqa: E402

import trading.selectors  # noqa: E402, F401
from marketdata import calendar  # noqa: E402
from streaming.auth import WebSocketAuthMiddleware  # noqa: E402
from streaming.fanout import RawSocketMiddleware  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402

# What a WebSocket connect reads (trading.selectors' status snapshot and the market calendar) is
# loaded at start, not in the first client's connect: django.setup() no longer imports it (issue
# 20). Views load with the first HTTP request, which a production `ws` never gets.
calendar.is_open(calendar.utcnow())

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin checks live in WebSocketAuthMiddleware: cookies only from our own origin,
        # tokens from anywhere (a WordPress site's dashboard).
        # RawSocketMiddleware must see daphne's own `send`: it stays outermost.
        "websocket": RawSocketMiddleware(
            CookieMiddleware(
                SessionMiddleware(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)
