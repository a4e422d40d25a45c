"""Refuse to serve with DEBUG on from a non-loopback address.

Django's debug page shows settings (REDIS_URL and CELERY_BROKER_URL with their passwords) and
every URL to whoever triggers an error. DEBUG is off unless asked for; `make run` asks for it
only when it serves on loopback. The servers check their bind address before they start:
gunicorn (tradingrobot.gunicorn_conf) and daphne (the Procfile's `ws` line runs
`python -m tradingrobot.bind_check $HOST` first).
"""

from __future__ import annotations

import ipaddress
import sys

from django.core.exceptions import ImproperlyConfigured


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name (or 0.0.0.0-like wildcard) may resolve to anything


def bind_host(bind: str) -> str:
    """ "127.0.0.1:8000" -> "127.0.0.1", "[::1]:8000" -> "::1", "unix:/x.sock" -> "unix"."""
    if bind.startswith("unix:"):
        return "unix"
    if bind.startswith("["):
        return bind[1 : bind.index("]")]
    return bind.rsplit(":", 1)[0] if bind.count(":") == 1 else bind


def refuse_debug_on_public_bind(hosts: list[str], *, debug: bool) -> None:
    public = [h for h in hosts if h != "unix" and not is_loopback(h)]
    if debug and public:
        raise ImproperlyConfigured(
            f"DEBUG is on and the server would listen on {', '.join(public)}: the debug page "
            "shows secrets to anyone who reaches it. Set DEBUG=false (and SECRET_KEY, "
            "ALLOWED_HOSTS), or bind to 127.0.0.1."
        )


def main(argv: list[str]) -> int:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    from django.conf import settings  # the settings alone: no app loading, it runs before daphne

    try:
        refuse_debug_on_public_bind(argv or ["127.0.0.1"], debug=settings.DEBUG)
    except ImproperlyConfigured as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
