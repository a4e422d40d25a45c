"""Outbound HTTP helpers for the SDK clients we call (alpaca-py's trading and market-data
clients): a default timeout on every request, and no SDK-side retries (ours are bounded and
know which calls are safe to repeat)."""

from __future__ import annotations

from typing import Any

from requests.adapters import HTTPAdapter


class _TimeoutAdapter(HTTPAdapter):
    """requests has no session-wide timeout and alpaca-py passes none: add one per request."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def install_timeout(client: Any, timeout: float) -> None:
    """Give an alpaca-py RESTClient's requests session a default timeout (seconds)."""
    adapter = _TimeoutAdapter(timeout)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)


def disable_sdk_retry(client: Any) -> None:
    """Turn off alpaca-py's built-in retry (RESTClient._retry; default 3 tries on 429 and 504).

    A retried POST /v2/orders after a lost response (504 = gateway timeout: the order may well
    exist) could place a second order unless Alpaca dedups the client_order_id; we do not want
    to depend on that. Retries happen in `_call`, only for 429 (rejected before processing), and
    a caller that saw a timeout looks the order up by client_order_id before anything is resent.
    The constructor's `retry_attempts=0` is ignored by alpaca-py (it only applies values > 0),
    hence the attribute.
    """
    client._retry = 0
