from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

MONEY = {"max_digits": 20, "decimal_places": 6}
QTY = {"max_digits": 20, "decimal_places": 6}
ZERO = Decimal("0")


class SessionMode(models.TextChoices):
    PAPER = "paper"
    LIVE = "live"


class SessionStatus(models.TextChoices):
    RUNNING = "running"
    STOPPED = "stopped"
    HALTED = "halted"


class TradingSession(models.Model):
    """One run of the robot. Every order, trade and position belongs to one."""

    mode = models.CharField(max_length=8, choices=SessionMode.choices, default=SessionMode.PAPER)
    broker = models.CharField(max_length=32, default="paper")
    status = models.CharField(
        max_length=8, choices=SessionStatus.choices, default=SessionStatus.RUNNING
    )
    starting_cash = models.DecimalField(**MONEY)
    starting_equity = models.DecimalField(**MONEY)
    # The paper broker's cash; for a live broker the broker's own account is the truth.
    cash = models.DecimalField(**MONEY)
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=255, blank=True)
    # Per-session overrides of the RISK_* settings (keys: see trading.risk.LIMIT_KEYS).
    risk_limits = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # At most one running session: strategies and the API trade into "the" session.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="running"),
                name="one_running_session",
            )
        ]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.mode}, {self.status})"


class OrderSource(models.TextChoices):
    API = "api"
    STRATEGY = "strategy"
    WORDPRESS = "wordpress"
    ADMIN = "admin"
    # Found at the broker by reconciliation, not placed through this system.
    RECONCILE = "reconcile"


class OrderSide(models.TextChoices):
    BUY = "buy"
    SELL = "sell"


class OrderType(models.TextChoices):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    # A stop that follows the price: trail_price or trail_percent behind the high-water mark
    # (sell) or above the low-water mark (buy); never a leg of a bracket/OCO/OTO.
    TRAILING_STOP = "trailing_stop"


class OrderClass(models.TextChoices):
    """Alpaca's order classes: an entry with exits attached (bracket: both, OTO: one) or a pair
    of exits of which one cancels the other (OCO)."""

    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class LegRole(models.TextChoices):
    """The role of a leg within its order's group (Alpaca's group_role, without `entry`: the
    entry is the parent). An OCO's parent is its take-profit; its one leg is the stop-loss."""

    NONE = "", "parent or simple"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


class TimeInForce(models.TextChoices):
    DAY = "day"
    GTC = "gtc"


class OrderStatus(models.TextChoices):
    PENDING_SUBMIT = "pending_submit"
    # An exit leg waiting for its entry to fill completely (Alpaca's `held`): open, not working.
    HELD = "held"
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


OPEN_STATUSES = (
    OrderStatus.PENDING_SUBMIT,
    OrderStatus.HELD,
    OrderStatus.NEW,
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
)
FINAL_STATUSES = (
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
    OrderStatus.EXPIRED,
    OrderStatus.REJECTED,
)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The idempotency key: one client_order_id, one order, enforced by the database.
    client_order_id = models.CharField(max_length=128, unique=True)
    broker_order_id = models.CharField(max_length=128, blank=True, db_index=True)
    session = models.ForeignKey(TradingSession, on_delete=models.PROTECT, related_name="orders")
    strategy_config = models.ForeignKey(
        "strategies.StrategyConfig",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    source = models.CharField(max_length=16, choices=OrderSource.choices, default=OrderSource.API)
    symbol = models.CharField(max_length=16)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    type = models.CharField(max_length=16, choices=OrderType.choices, default=OrderType.MARKET)
    qty = models.DecimalField(**QTY)
    limit_price = models.DecimalField(**MONEY, null=True, blank=True)
    stop_price = models.DecimalField(**MONEY, null=True, blank=True)
    time_in_force = models.CharField(
        max_length=8, choices=TimeInForce.choices, default=TimeInForce.DAY
    )
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING_SUBMIT
    )
    filled_qty = models.DecimalField(**QTY, default=ZERO)
    filled_avg_price = models.DecimalField(**MONEY, null=True, blank=True)
    reject_reason = models.CharField(max_length=255, blank=True)
    submit_attempts = models.PositiveIntegerField(default=0)
    # Queued while the market was closed: not sent before this market time (the next open).
    submit_after = models.DateTimeField(null=True, blank=True)
    # Market time the broker accepted the order: only bars starting at or after it can fill it.
    market_time = models.DateTimeField(null=True, blank=True)
    # Day orders expire at this market time (the session's close, early closes included).
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set while one process has the order in flight to the broker: no other sender may claim it
    # until the answer is recorded or the lease runs out (a crashed sender).
    send_lease_until = models.DateTimeField(null=True, blank=True)
    # A stop-limit order whose stop was reached rests as a limit order.
    stop_triggered = models.BooleanField(default=False)
    # Protective orders (trading.services.legs): a bracket/OTO entry's exits, and an OCO's
    # stop-loss, are legs of their parent; one leg filling cancels its sibling.
    order_class = models.CharField(
        max_length=8, choices=OrderClass.choices, default=OrderClass.SIMPLE
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="legs"
    )
    leg_role = models.CharField(max_length=12, choices=LegRole.choices, blank=True, default="")
    # A trailing stop: its distance (one of the two), and the high-water mark it trails (the
    # low-water mark for a buy); stop_price is the current stop, hwm -/+ the trail.
    trail_price = models.DecimalField(**MONEY, null=True, blank=True)
    trail_percent = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    hwm = models.DecimalField(**MONEY, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["symbol", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.qty} {self.symbol} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Trade(models.Model):
    """One fill of an order."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="trades")
    session = models.ForeignKey(TradingSession, on_delete=models.PROTECT, related_name="trades")
    symbol = models.CharField(max_length=16)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    qty = models.DecimalField(**QTY)
    price = models.DecimalField(**MONEY)
    fee = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    broker_trade_id = models.CharField(max_length=128, blank=True)
    executed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-executed_at", "-id"]
        indexes = [models.Index(fields=["symbol", "executed_at"])]

    def __str__(self) -> str:
        return f"{self.side} {self.qty} {self.symbol} @ {self.price}"


class Position(models.Model):
    session = models.ForeignKey(TradingSession, on_delete=models.PROTECT, related_name="positions")
    symbol = models.CharField(max_length=16)
    qty = models.DecimalField(**QTY, default=ZERO)
    avg_entry_price = models.DecimalField(**MONEY, default=ZERO)
    last_price = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.UniqueConstraint(fields=["session", "symbol"], name="one_position_per_symbol")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.qty}"

    @property
    def market_value(self) -> Decimal:
        return self.qty * self.last_price

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.last_price - self.avg_entry_price) * self.qty


class EquitySnapshot(models.Model):
    session = models.ForeignKey(
        TradingSession, on_delete=models.CASCADE, related_name="equity_snapshots"
    )
    timestamp = models.DateTimeField(db_index=True)
    cash = models.DecimalField(**MONEY)
    equity = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["timestamp"]
        indexes = [models.Index(fields=["session", "timestamp"])]


class KillSwitch(models.Model):
    """The one persistent halt flag (row pk=1). Only an explicit resume clears it."""

    engaged = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "kill switch"
        verbose_name_plural = "kill switch"
        # The trading permissions (trading.permissions): they live here, on the one row that
        # every trading act consults.
        permissions = [
            ("trade", "Can trade (orders, halt/resume, sessions, strategy runs)"),
            ("loosen_risk_limits", "Can start a session with risk limits looser than RISK_*"),
        ]

    def __str__(self) -> str:
        return "ENGAGED" if self.engaged else "released"


class ApiScope(models.TextChoices):
    READ = "read"
    TRADE = "trade"


class ApiKey(AbstractAPIKey):
    """A hashed API key with a scope; `trade` includes `read`."""

    scope = models.CharField(max_length=8, choices=ApiScope.choices, default=ApiScope.READ)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class RobinhoodLoginState(models.TextChoices):
    LOGGED_OUT = "logged_out"
    OK = "ok"
    APPROVAL_NEEDED = "approval_needed"
    LOGIN_FAILED = "login_failed"
    RATE_LIMITED = "rate_limited"


class RobinhoodLogin(models.Model):
    """The experimental Robinhood broker's login (one row): its OAuth tokens and device token,
    Fernet-encrypted with a key derived from SECRET_KEY (trading.brokers.robinhood_auth), and
    the state status/health report. The tokens never go to a file."""

    username = models.CharField(max_length=150, blank=True)
    device_token = models.TextField(blank=True)  # encrypted
    access_token = models.TextField(blank=True)  # encrypted
    refresh_token = models.TextField(blank=True)  # encrypted
    access_expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=20, choices=RobinhoodLoginState.choices, default=RobinhoodLoginState.LOGGED_OUT
    )
    detail = models.CharField(max_length=255, blank=True)
    # The open verification workflow: workflow_id, machine_id, challenge_id, challenge_type.
    challenge = models.JSONField(default=dict, blank=True)
    # No call (no login either) before this time: a 429's Retry-After, a refused login.
    cooldown_until = models.DateTimeField(null=True, blank=True)
    # Consecutive 429s without a success: each doubles the next cool-down.
    rate_limit_strikes = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Robinhood login ({self.state})"


class RobinhoodOrderRef(models.Model):
    """Our client_order_id and the `ref_id` (a UUIDv5 of it) sent with the order, written before
    the order is sent, so a lost response is found again by its ref_id."""

    ref_id = models.UUIDField(primary_key=True)
    client_order_id = models.CharField(max_length=128, unique=True)
    broker_order_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.client_order_id} -> {self.ref_id}"
