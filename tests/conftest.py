from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from trading.models import ApiKey, ApiScope


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks across threads); CI runs it")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _client(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def read_key(db) -> str:
    return ApiKey.objects.create_key(name="reader", scope=ApiScope.READ)[1]


@pytest.fixture
def trade_key(db) -> str:
    return ApiKey.objects.create_key(name="trader", scope=ApiScope.TRADE)[1]


@pytest.fixture
def reader(read_key) -> APIClient:
    return _client(read_key)


@pytest.fixture
def trader(trade_key) -> APIClient:
    return _client(trade_key)


@pytest.fixture
def anonymous() -> APIClient:
    return _client(None)


@pytest.fixture
def session(db):
    from trading.services import session_ensure_running

    return session_ensure_running()


@pytest.fixture
def market(db):
    """Recent synthetic history for the primary symbols (what a first collection stores)."""
    from marketdata.services import bars_collect

    return bars_collect()


@pytest.fixture(autouse=True)
def _fresh_status_cache():
    """GET /status is cached ~1 s in Redis (tradingrobot.api): no test sees another's status."""
    from tradingrobot.api.views import status_cache_clear

    status_cache_clear()
