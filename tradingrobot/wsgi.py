"""WSGI entry point: the HTTP API under a WSGI server (gunicorn); WebSockets stay on daphne.

See README "HTTP API" for why production serves HTTP this way.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
application = get_wsgi_application()
