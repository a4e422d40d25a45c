"""Schemathesis against the live schema: every operation the schema lists (whoever wrote it),
well-formed and malformed inputs, with a trade-scope key. Zero 5xx, zero schema violations."""

from __future__ import annotations

import time

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db

MIN_CASES = 1000
TIME_BUDGET = 150.0  # seconds
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app():
    """The real WSGI app in this thread, inside the test's transaction: Django's test client
    does the same (a request must not close the test's connection between requests)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_fuzz_every_operation_of_the_schema(wsgi_app, trade_key, session, market, settings, capsys):
    settings.API_THROTTLE_RATE = ""  # thousands of requests from one key
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # The kill switch route last: before it, trades can succeed.
    operations.sort(key=lambda op: "stop_trading" in op.path)
    assert len(operations) >= 12
    headers = {"Authorization": f"Bearer {trade_key}"}
    counts: dict[str, int] = {}
    started = time.monotonic()

    def run(operation, mode: GenerationMode, examples: int) -> None:
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            counts[label] = counts.get(label, 0) + 1
            if mode is GenerationMode.NEGATIVE:
                # Malformed input: only "never a 5xx, always a documented status".
                case.call_and_validate(
                    headers=headers, checks=[not_a_server_error, status_code_conformance]
                )
            else:
                case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # Nothing to make malformed (no parameters, no body): positive runs cover it.
            assert mode is GenerationMode.NEGATIVE, label

    for operation in operations:
        run(operation, GenerationMode.POSITIVE, 80)
        run(operation, GenerationMode.NEGATIVE, 40)
    # Operations with few distinct inputs end early; top up on the richest until the floor.
    rounds = 0
    while sum(counts.values()) < MIN_CASES and time.monotonic() - started < TIME_BUDGET:
        rounds += 1
        for operation in operations:
            if operation.method.upper() == "GET" and operation.path.startswith("/api/v1/"):
                run(operation, GenerationMode.POSITIVE, 80 + 40 * rounds)

    total = sum(counts.values())
    elapsed = time.monotonic() - started
    with capsys.disabled():  # shown in every run's output, not only on failure
        print(f"\nschemathesis: {total} cases over {len(counts)} operations in {elapsed:.0f}s")
        for label, count in sorted(counts.items()):
            print(f"  {count:5d}  {label}")
    assert total >= MIN_CASES
