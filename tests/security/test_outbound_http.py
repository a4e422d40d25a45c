"""Outbound HTTP (tradingrobot.http) for the WordPress provider and Alpaca: no cross-origin
redirect with credentials, a total deadline, a body size cap (issue 14, finding 7). The servers
are real, on 127.0.0.1; "another origin" is the same machine under another port."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from marketdata.providers.base import ProviderError
from marketdata.providers.wordpress import WordPressProvider
from trading.brokers.alpaca import AlpacaBroker
from trading.brokers.base import BrokerError
from tradingrobot.http import (
    CrossOriginRedirect,
    DeadlineExceeded,
    ResponseTooLarge,
    guarded_session,
)

BODY = json.dumps({"stock_data": []}).encode()


class Server:
    """A hostile site: redirects, trickles, floods. `seen` records each request's headers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []
        self.redirect_to = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.seen.append((self.path, dict(self.headers)))
                path = self.path.split("?")[0]
                if "/redirect" in path:
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path.endswith("/trickle"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    try:
                        for byte in BODY:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.4)
                    except OSError:
                        pass
                elif path.endswith("/declared-huge"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(100 * 1024 * 1024))
                    self.end_headers()
                    try:
                        self.wfile.write(b"x" * 65536)
                    except OSError:
                        pass
                elif path.endswith("/flood"):
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        for _ in range(2000):  # 128 MB if read whole
                            self.wfile.write(b"y" * 65536)
                    except OSError:
                        pass
                    self.close_connection = True
                elif path.endswith("/gzip"):
                    data = gzip.compress(BODY)
                    self.send_response(200)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    self.wfile.write(BODY)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site():
    server = Server()
    yield server
    server.close()


@pytest.fixture
def elsewhere():
    server = Server()
    yield server
    server.close()


def test_the_wordpress_provider_does_not_follow_a_redirect_to_another_origin(
    site, elsewhere, settings
):
    site.redirect_to = f"{elsewhere.url}/stock-data"
    provider = WordPressProvider(
        base_url=f"{site.url}/redirect?x=", auth_header="Authorization: Bearer wp-secret"
    )
    provider.base_url = site.url  # requests go to {base}/stock-data
    provider_redirecting = WordPressProvider(
        base_url=f"{site.url}", auth_header="X-WP-Key: wp-secret"
    )
    with pytest.raises(ProviderError, match="another origin"):
        provider_redirecting._get("redirect")
    assert elsewhere.seen == []  # the credentials never left for the other origin
    # A redirect within the same origin is followed, header and all.
    site.redirect_to = f"{site.url}/stock-data"
    assert provider._get("redirect") == {"stock_data": []}
    assert site.seen[-1][1].get("Authorization") == "Bearer wp-secret"


def test_the_wordpress_provider_has_a_total_deadline(site, settings):
    settings.OUTBOUND_HTTP_DEADLINE_SECONDS = 1.5
    provider = WordPressProvider(base_url=site.url, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderError):
        provider._get("trickle")  # each byte within the timeout, the whole far beyond it
    assert time.monotonic() - started < 2.5


def test_bodies_over_the_cap_are_refused_without_reading_them_whole(site, settings):
    settings.OUTBOUND_HTTP_MAX_BYTES = 1024 * 1024
    provider = WordPressProvider(base_url=site.url)
    with pytest.raises(ProviderError, match="cap"):
        provider._get("declared-huge")
    with pytest.raises(ProviderError, match="cap"):
        provider._get("flood")
    session = guarded_session(timeout=2, max_bytes=1024 * 1024)
    with pytest.raises(ResponseTooLarge):
        session.get(f"{site.url}/flood")
    with pytest.raises(DeadlineExceeded):
        guarded_session(timeout=1, deadline=1).get(f"{site.url}/trickle")
    # Ordinary answers, compressed or not, come through whole.
    assert session.get(f"{site.url}/gzip").json() == {"stock_data": []}
    assert session.get(f"{site.url}/plain").json() == {"stock_data": []}
    assert isinstance(CrossOriginRedirect("x"), requests.RequestException)


def test_the_alpaca_client_does_not_carry_its_keys_to_another_origin(site, elsewhere):
    site.redirect_to = f"{elsewhere.url}/v2/account"
    broker = AlpacaBroker(
        api_key="AKFAKE", secret_key="SECRETFAKE", paper=True, url_override=f"{site.url}/redirect"
    )
    with pytest.raises(BrokerError):
        asyncio.run(broker.get_account())
    assert site.seen and site.seen[0][1].get("APCA-API-KEY-ID") == "AKFAKE"
    assert elsewhere.seen == []
    with pytest.raises(CrossOriginRedirect):
        broker._client._session.get(f"{site.url}/redirect")
    assert elsewhere.seen == []
