"""Trading settings: the broker and its accounts (paper, Alpaca, Robinhood), the `stream`
process and live prices, and the risk limits. Part of `tradingrobot.settings`, which imports
everything here (read from the same environment, `.env` included, loaded there first).
"""

from __future__ import annotations

from decimal import Decimal

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# --- Trading -------------------------------------------------------------------------------------
BROKER = env.str("BROKER", default="paper")
BROKER_BACKENDS = {
    "paper": "trading.brokers.paper.PaperBroker",
    "alpaca": "trading.brokers.alpaca.AlpacaBroker",
    "robinhood": "trading.brokers.robinhood.RobinhoodBroker",
}
if BROKER not in BROKER_BACKENDS and "." not in BROKER:
    raise ImproperlyConfigured(
        f"BROKER={BROKER!r} is not one of {sorted(BROKER_BACKENDS)} nor a dotted path."
    )
PAPER_STARTING_CASH = Decimal(env.str("PAPER_STARTING_CASH", default="100000"))
PAPER_SLIPPAGE_BPS = Decimal(env.str("PAPER_SLIPPAGE_BPS", default="0"))
PAPER_FEE_PER_ORDER = Decimal(env.str("PAPER_FEE_PER_ORDER", default="0"))
ALPACA_API_KEY = env.str("ALPACA_API_KEY", default="")
ALPACA_SECRET_KEY = env.str("ALPACA_SECRET_KEY", default="")
ALPACA_PAPER = env.bool("ALPACA_PAPER", default=True)
ALPACA_URL_OVERRIDE = env.str("ALPACA_URL_OVERRIDE", default="") or None
ALPACA_DATA_URL_OVERRIDE = env.str("ALPACA_DATA_URL_OVERRIDE", default="") or None
# The experimental Robinhood broker (unofficial API; README "Robinhood (experimental, unofficial)").
ROBINHOOD_USERNAME = env.str("ROBINHOOD_USERNAME", default="")
ROBINHOOD_PASSWORD = env.str("ROBINHOOD_PASSWORD", default="")
ROBINHOOD_MFA_SECRET = env.str("ROBINHOOD_MFA_SECRET", default="")
ROBINHOOD_ACCOUNT_NUMBER = env.str("ROBINHOOD_ACCOUNT_NUMBER", default="")
ROBINHOOD_API_URL = env.str("ROBINHOOD_API_URL", default="https://api.robinhood.com")
ROBINHOOD_TIMEOUT_SECONDS = env.float("ROBINHOOD_TIMEOUT_SECONDS", default=10)
# At most one call per this interval across all processes (bursts get accounts locked out).
ROBINHOOD_MIN_INTERVAL_SECONDS = env.float("ROBINHOOD_MIN_INTERVAL_SECONDS", default=1.0)
# A 429 whose Retry-After is at most this long is waited out once; a longer one (or a second)
# starts a cool-down, kept in the database, during which no call is made.
ROBINHOOD_RETRY_AFTER_MAX_WAIT_SECONDS = env.float(
    "ROBINHOOD_RETRY_AFTER_MAX_WAIT_SECONDS", default=5
)
ROBINHOOD_COOLDOWN_SECONDS = env.float("ROBINHOOD_COOLDOWN_SECONDS", default=60)
ROBINHOOD_MAX_COOLDOWN_SECONDS = env.float("ROBINHOOD_MAX_COOLDOWN_SECONDS", default=3600)
# After a refused password login, no new login attempt for this long (repeated failures lock).
ROBINHOOD_LOGIN_RETRY_SECONDS = env.float("ROBINHOOD_LOGIN_RETRY_SECONDS", default=900)
# While a device approval is pending, its status is asked at most this often.
ROBINHOOD_APPROVAL_POLL_SECONDS = env.float("ROBINHOOD_APPROVAL_POLL_SECONDS", default=30)
# The trading stream (trade_updates); default: derived from ALPACA_URL_OVERRIDE, else alpaca-py's
# paper or live URL.
ALPACA_STREAM_URL = env.str("ALPACA_STREAM_URL", default="") or None

# --- Real-time streams (the `stream` process: realtime/) ----------------------------------------
# Reconnect delay: full jitter, uniform in [0, min(MAX, MIN * 2**attempt)]; reset once live.
STREAM_BACKOFF_MIN_SECONDS = env.float("STREAM_BACKOFF_MIN_SECONDS", default=1.0)
STREAM_BACKOFF_MAX_SECONDS = env.float("STREAM_BACKOFF_MAX_SECONDS", default=30.0)
# A market-data socket with no message for this long while the market is open counts as dead.
STREAM_SILENCE_SECONDS = env.float("STREAM_SILENCE_SECONDS", default=30.0)
# The lease that makes one `stream` process per broker account the holder of its connections:
# renewed every third of this; a standby takes over at most this long after the holder dies.
STREAM_LEASE_SECONDS = env.float("STREAM_LEASE_SECONDS", default=3.0)
# A connection that is not live (authenticated, subscribed, refreshed) within this is retried.
STREAM_CONNECT_TIMEOUT_SECONDS = env.float("STREAM_CONNECT_TIMEOUT_SECONDS", default=30.0)
# While a broker's stream is not live, its open orders are polled this often (beat).
STREAM_POLL_SECONDS = env.int("STREAM_POLL_SECONDS", default=15)
for _name in (
    "STREAM_BACKOFF_MIN_SECONDS",
    "STREAM_BACKOFF_MAX_SECONDS",
    "STREAM_SILENCE_SECONDS",
    "STREAM_LEASE_SECONDS",
    "STREAM_CONNECT_TIMEOUT_SECONDS",
    "STREAM_POLL_SECONDS",
):
    if not globals()[_name] > 0:
        raise ImproperlyConfigured(f"{_name} must be positive.")
if STREAM_BACKOFF_MAX_SECONDS < STREAM_BACKOFF_MIN_SECONDS:
    raise ImproperlyConfigured(
        "STREAM_BACKOFF_MAX_SECONDS must be at least STREAM_BACKOFF_MIN_SECONDS."
    )

# --- Real time (issue 15): live prices and the market-data stream --------------------------------
# (STREAM_SILENCE_SECONDS: with the `stream` process's settings above.)
# The paper broker and the risk checks price an order at the streamed price while it is at most
# this old (wall-clock seconds since the stream received it), else at the last bar's close.
LIVE_PRICE_MAX_AGE_SECONDS = env.float("LIVE_PRICE_MAX_AGE_SECONDS", default=15)
# `market_data` quote and forming-bar events per symbol and second, at most (the latest wins).
QUOTE_EVENTS_PER_SECOND = env.float("QUOTE_EVENTS_PER_SECOND", default=2)
if QUOTE_EVENTS_PER_SECOND <= 0:
    raise ImproperlyConfigured("QUOTE_EVENTS_PER_SECOND must be above 0.")
# Alpaca's market-data stream: feed "iex" (free) or "sip" (paid), and its full URL for tests or a
# proxy (default: alpaca-py's wss://stream.data.alpaca.markets/v2/<feed>).
ALPACA_DATA_FEED = env.str("ALPACA_DATA_FEED", default="iex").lower()
if ALPACA_DATA_FEED not in ("iex", "sip"):
    raise ImproperlyConfigured("ALPACA_DATA_FEED must be 'iex' or 'sip'.")
ALPACA_DATA_STREAM_URL = env.str("ALPACA_DATA_STREAM_URL", default="") or None
# The synthetic provider's tick generator: ticks per symbol and second.
SYNTHETIC_TICKS_PER_SECOND = env.float("SYNTHETIC_TICKS_PER_SECOND", default=4)
if not 0 < SYNTHETIC_TICKS_PER_SECOND <= 50:
    raise ImproperlyConfigured("SYNTHETIC_TICKS_PER_SECOND must be above 0 and at most 50.")

# --- Risk ----------------------------------------------------------------------------------------
RISK_SYMBOL_ALLOWLIST = [s.upper() for s in env.list("RISK_SYMBOL_ALLOWLIST", default=[])]
RISK_MAX_ORDER_NOTIONAL = (
    Decimal(env.str("RISK_MAX_ORDER_NOTIONAL"))
    if env.str("RISK_MAX_ORDER_NOTIONAL", default="")
    else None
)


def _optional_decimal(name: str) -> Decimal | None:
    raw = env.str(name, default="")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from exc
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be a non-negative number.")
    return value


# Unset limits do not apply. Each can be overridden per session (TradingSession.risk_limits).
RISK_MAX_POSITION_VALUE = _optional_decimal("RISK_MAX_POSITION_VALUE")
RISK_MAX_OPEN_ORDERS = env.int("RISK_MAX_OPEN_ORDERS", default=0) or None
RISK_DAILY_LOSS_LIMIT = _optional_decimal("RISK_DAILY_LOSS_LIMIT")
RISK_ALLOW_SHORT = env.bool("RISK_ALLOW_SHORT", default=False)
RISK_ENFORCE_MARKET_HOURS = env.bool("RISK_ENFORCE_MARKET_HOURS", default=True)
# Instead of rejecting an order while the market is closed, keep it until the next open.
RISK_QUEUE_WHEN_CLOSED = env.bool("RISK_QUEUE_WHEN_CLOSED", default=False)
# A pending_submit order the broker never received is not sent after this many seconds
# (reconciliation rejects it instead: a stale market order must not fill hours later).
ORDER_SUBMIT_MAX_AGE_SECONDS = env.int("ORDER_SUBMIT_MAX_AGE_SECONDS", default=300)
# Reconcile with the broker when a Celery worker starts.
RECONCILE_ON_WORKER_START = env.bool("RECONCILE_ON_WORKER_START", default=True)
# ... and periodically (beat), so no order stays pending_submit past its lease + this interval.
RECONCILE_INTERVAL_SECONDS = env.int("RECONCILE_INTERVAL_SECONDS", default=60)
if RECONCILE_INTERVAL_SECONDS < 1:
    raise ImproperlyConfigured("RECONCILE_INTERVAL_SECONDS must be at least 1.")
# How long one sender holds an order it is submitting before another may try (longer than the
# broker's timeout plus its rate-limit retries).
ORDER_SEND_LEASE_SECONDS = env.int("ORDER_SEND_LEASE_SECONDS", default=60)
