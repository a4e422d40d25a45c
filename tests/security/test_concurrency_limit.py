"""The per-key concurrency limiter for expensive work (tradingrobot.api.concurrency)."""

from __future__ import annotations

import pytest

from tradingrobot.api.concurrency import TooBusy, concurrency_slot


def test_a_key_gets_at_most_limit_slots_and_gets_them_back():
    with concurrency_slot("bt:key-a", limit=2), concurrency_slot("bt:key-a", limit=2):
        with pytest.raises(TooBusy) as refused, concurrency_slot("bt:key-a", limit=2):
            pass
        assert refused.value.status_code == 429 and refused.value.wait == 5
        with concurrency_slot("bt:key-b", limit=2):  # another key is not affected
            pass
    with concurrency_slot("bt:key-a", limit=2), concurrency_slot("bt:key-a", limit=2):
        pass  # both freed, also after the refusal


def test_a_failure_inside_frees_the_slot():
    with pytest.raises(RuntimeError), concurrency_slot("bt:key-c", limit=1):
        raise RuntimeError("boom")
    with concurrency_slot("bt:key-c", limit=1):
        pass
