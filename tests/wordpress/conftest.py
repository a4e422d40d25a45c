"""Fixtures of the WordPress suite: one fresh WordPress per module (on MariaDB, served by
`php -S`), and per test the real backend (daphne) with its keys written into the plugin's
options. The suite skips, saying why, where PHP, WordPress, PHPUnit or MariaDB is missing;
.ci/run installs them so CI never skips it."""

from __future__ import annotations

import os

import pytest

from tests.wordpress.site import UntrustedTLSServer, WordPressSite, missing_requirements

MISSING = missing_requirements()


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if "tests/wordpress/" in item.nodeid]
    if not MISSING or not ours:
        return
    if os.environ.get("WORDPRESS_SUITE_REQUIRED"):
        raise pytest.UsageError(f"WORDPRESS_SUITE_REQUIRED is set but {MISSING}")
    skip = pytest.mark.skip(reason=f"WordPress suite skipped: {MISSING}")
    for item in ours:
        item.add_marker(skip)


@pytest.fixture(scope="module")
def wp_site(tmp_path_factory):
    base = tmp_path_factory.mktemp("wordpress")
    site = WordPressSite(base / "site", base)
    try:
        site.install().start()
        yield site
    finally:
        site.close()


class Backend:
    def __init__(self, daphne, trade_key: str, read_key: str) -> None:
        self.daphne = daphne
        self.base = daphne.base
        self.trade_key = trade_key
        self.read_key = read_key


@pytest.fixture
def backend(wp_site, market, session, trade_key, read_key, daphne_factory):
    """The backend on a port of its own, with market data and a running session; the plugin
    configured with its URL and a trade-scope key."""
    server = daphne_factory()
    wp_site.set_options(trp_backend_url=server.base, trp_api_key=trade_key)
    wp_site.php("Trading_Robot_Plug_API_Client::flush_cache();")
    return Backend(server, trade_key, read_key)


@pytest.fixture
def untrusted_tls(tmp_path):
    server = UntrustedTLSServer(tmp_path)
    yield server
    server.close()
