"""Every state change of the trading domain: one function per use case, one module per area.

API views, strategies, admin actions and tasks all come through here, so the kill switch, the
risk checks, idempotency and the events hold on every path. Callers import from this package
(`from trading.services import order_submit`); the modules are:

- `transitions`: which order status may follow which, and the order_update event.
- `sessions`: start, ensure, stop a trading session.
- `kill_switch`: halt (cancel open orders, optionally flatten) and resume.
- `order_submit`: validate, refuse when halted, risk checks, commit, send.
- `order_send`: the send lease, the broker call, retries of orders whose answer never came.
- `order_cancel`: cancel at the broker and locally, reject.
- `fills`: record the broker's view of an order (fills: trade, position, cash; then status).
- `bars`: after each collection: queued orders, resting paper orders, day-order expiry; and
  after live prices: the paper broker's legs and trailing stops.
- `reconcile`: compare with the broker and repair the local side.
- `broker_updates`: order updates the broker pushes (its stream), and the poll standing in
  while the stream is down.
- `mark_to_market`: price positions, snapshot equity, trip the daily loss limit.

Reliability rules (DESIGN.md §11) and how they hold here:

- An order row is committed as pending_submit before the broker is called. A temporary broker
  failure leaves it pending_submit; the retry task and reconciliation both look it up by
  client_order_id at the broker before anything could be sent again.
- One client_order_id, one order: the database's unique constraint decides, not a prior read.
- The kill switch and the broker's truth. The halt cancels open orders; an order whose broker
  call is in flight at that moment cannot be canceled at the broker yet (we do not know its
  broker id), so the halt cancels it locally. When the broker's answer then arrives, the broker
  wins: a fill is recorded (trade, position, cash) and the order takes the broker's status, with
  the override logged and published. If the broker left it open, `order_send` cancels it at the
  broker right away because the kill switch is set. Reconciliation applies the same rule to any
  order the broker still holds that we canceled locally. So an order is never silently lost and
  a fill is never dropped.
"""

from trading.exceptions import (  # noqa: F401 - re-exported: callers catch them from here
    BrokerUnavailable,
    DomainError,
    IllegalTransition,
    InsufficientBuyingPower,
    InvalidOrder,
    NoRunningSession,
    OrderNotCancelable,
    OrderRejected,
    RiskLimitExceeded,
    SessionRunning,
    TradingHalted,
    UnknownSymbol,
)
from trading.services.bars import BarsResult, orders_at_live_prices, orders_process_bars
from trading.services.broker_updates import order_record_update, orders_poll
from trading.services.fills import order_record_broker_state
from trading.services.kill_switch import (
    HaltResult,
    positions_flatten,
    trading_halt,
    trading_resume,
)
from trading.services.mark_to_market import session_mark_to_market
from trading.services.order_cancel import order_cancel, order_reject
from trading.services.order_send import order_resubmit, order_send
from trading.services.order_submit import SubmitResult, order_submit
from trading.services.reconcile import ReconcileReport, orders_refresh_open, reconcile
from trading.services.sessions import session_ensure_running, session_start, session_stop
from trading.services.transitions import TRANSITIONS, order_transition

__all__ = [
    "TRANSITIONS",
    "BarsResult",
    "HaltResult",
    "ReconcileReport",
    "SubmitResult",
    "order_cancel",
    "order_record_broker_state",
    "order_record_update",
    "order_reject",
    "order_resubmit",
    "order_send",
    "order_submit",
    "order_transition",
    "orders_poll",
    "orders_at_live_prices",
    "orders_process_bars",
    "orders_refresh_open",
    "positions_flatten",
    "reconcile",
    "session_ensure_running",
    "session_mark_to_market",
    "session_start",
    "session_stop",
    "trading_halt",
    "trading_resume",
]
