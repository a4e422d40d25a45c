"""Vectorized backtest engine (DESIGN.md §7). numpy only in the hot path; no Django.

Execution model
---------------
* ``target[t]`` is the exposure the strategy wants, decided with bar ``t``'s close. It is filled
  at bar ``t + 1``'s **open**, so the exposure held during bar ``i`` is ``target[i - 1]`` (flat on
  bar 0). The last bar's target is never filled: there is no next open.
* NaN targets mean "no opinion" and are treated as 0 (flat), the same as a warm-up period.
  Targets are clipped to [0, 1], or to [-1, 1] with ``allow_short=True``.
* Slippage: a buy fills at ``open * (1 + slippage_bps / 1e4)``, a sell at
  ``open * (1 - slippage_bps / 1e4)``. Fees: ``fee_bps`` of each fill's notional
  (``qty * fill_price``) plus ``fee_per_trade`` per fill.

Sizing model
------------
Orders happen only when the held target changes, and every change is executed as
*close the old position, then open the new one* at the same open. A trade is therefore one
stretch of constant non-zero target, entered and exited in full, and its P&L (both fills'
fees included) is exactly the change in equity it caused. Opening a trade with target ``t``
while holding cash ``E``: the notional is ``N = |t| * (E - fee_per_trade) / (1 + fee_bps/1e4)``
and the quantity ``N / entry_fill_price``, so that with ``t = 1`` the notional plus both
entry fees spend exactly the cash (no borrowing). Cash left is
``E - fee_per_trade - N * (fee + sign(t))`` (a short adds its proceeds to cash). Equity on
each bar is ``cash + qty * close`` (qty negative for shorts). A trade is only entered while
``E > fee_per_trade``; once that fails the account stays flat (it can never recover while
flat). There are no margin calls or borrow costs: a losing short can drive equity negative.
Fractional re-sizing (0.5 -> 0.7) is also executed as close-and-reopen, which overstates its
costs; the strategies this engine serves switch between -1, 0 and 1.

Because the cash after each trade is an affine function of the cash before it
(``E1 = alpha * E0 + beta``, with ``alpha``/``beta`` depending only on prices and the target),
the whole sequence of trades is solved with cumulative products instead of a loop, and the
per-bar equity follows by repeating each fill's (cash, qty) state over the bars it covers.
A plain bar-by-bar loop reproduces it to rounding (tests/strategies/test_engine.py does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from strategies.metrics import DEFAULT_PERIODS_PER_YEAR, compute_metrics, timestamps_to_ns
from strategies.protective import Exits, apply_exits

TRADE_DTYPE = np.dtype(
    [
        ("entry_index", np.int64),
        ("exit_index", np.int64),
        ("entry_time", "datetime64[ns]"),
        ("exit_time", "datetime64[ns]"),
        ("side", np.int8),  # 1 long, -1 short
        ("target", np.float64),  # exposure the trade was sized for, in [-1, 1]
        ("qty", np.float64),  # units, always positive
        ("entry_price", np.float64),  # fill price including slippage
        ("exit_price", np.float64),  # fill price incl. slippage; last close if still open
        ("fees", np.float64),
        ("pnl", np.float64),  # account currency, fees included
        ("return", np.float64),  # pnl / entry notional
        ("is_open", np.bool_),  # still held on the last bar: marked at the close, no exit fill
    ]
)


@dataclass
class BacktestResult:
    """Everything a backtest produced; arrays have one value per bar unless noted."""

    equity: np.ndarray  # cash + qty * close, per bar
    positions: np.ndarray  # exposure held during each bar (the filled target), per bar
    units: np.ndarray  # signed quantity held during each bar
    trades: np.ndarray  # structured array of TRADE_DTYPE, one row per trade, oldest first
    metrics: dict[str, float | int | None]
    timestamps: np.ndarray | None = None  # int64 UTC nanoseconds per bar, if given
    params: dict[str, Any] = field(default_factory=dict)  # the costs/settings used

    @property
    def closed_trades(self) -> np.ndarray:
        return self.trades[~self.trades["is_open"]]


def run_backtest(
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    *,
    initial_cash: float = 100_000.0,
    fee_bps: float = 0.0,
    fee_per_trade: float = 0.0,
    slippage_bps: float = 0.0,
    allow_short: bool = False,
    timestamps: np.ndarray | pd.DatetimeIndex | None = None,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    with_metrics: bool = True,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    exits: Exits | None = None,
) -> BacktestResult:
    """Backtest target exposures against open/close prices; see the module docstring.

    `with_metrics=False` leaves `metrics` empty, for callers (parameter searches) that compute
    them once over a portfolio of sleeves instead. `exits` (protective stop-loss, take-profit
    or trailing stop, with the bars' `high` and `low`) are simulated by the paper broker's rules
    (strategies.protective.apply_exits); without them nothing of that runs."""
    open_ = np.asarray(open_, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    raw_target = np.asarray(target, dtype=np.float64)
    n = close.shape[0]
    if open_.shape[0] != n or raw_target.shape[0] != n:
        raise ValueError(
            f"open_, close and target must have the same length "
            f"({open_.shape[0]}, {n}, {raw_target.shape[0]})"
        )
    ts_ns = timestamps_to_ns(timestamps)
    if ts_ns is not None and ts_ns.shape[0] != n:
        raise ValueError(f"timestamps has {ts_ns.shape[0]} values but there are {n} bars")
    fee = fee_bps / 1e4
    slip = slippage_bps / 1e4
    fixed = float(fee_per_trade)
    settings = {
        "initial_cash": float(initial_cash),
        "fee_bps": float(fee_bps),
        "fee_per_trade": fixed,
        "slippage_bps": float(slippage_bps),
        "allow_short": bool(allow_short),
    }

    # Held exposure per bar: the previous bar's target, NaN as flat, clipped.
    held = np.empty(n, dtype=np.float64)
    if n:
        held[0] = 0.0
        np.clip(raw_target[:-1], -1.0 if allow_short else 0.0, 1.0, out=held[1:])
        held[1:][np.isnan(held[1:])] = 0.0

    # Fill bars: wherever the held exposure changes (bar 0 is flat, so never a fill).
    changes = np.flatnonzero(held[1:] != held[:-1]) + 1 if n > 1 else np.empty(0, np.int64)
    exit_open = None
    if exits is not None and exits.any:
        if high is None or low is None:
            raise ValueError("protective exits need the bars' high and low")
        held, exit_open = apply_exits(
            open_,
            np.asarray(high, dtype=np.float64),
            np.asarray(low, dtype=np.float64),
            close,
            held,
            exits,
            slip,
        )
        changes = np.flatnonzero(held[1:] != held[:-1]) + 1 if n > 1 else np.empty(0, np.int64)
        settings["exits"] = {k: v for k, v in vars(exits).items() if v is not None}
    change_target = held[changes]
    f = fills_compute(
        open_, changes, change_target, n, fee, slip, fixed, initial_cash, exit_open=exit_open
    )
    state_cash, state_qty, state_held = fill_states(f, change_target, initial_cash)
    run_lengths = np.diff(np.concatenate(([0], changes, [n])))
    units = np.repeat(state_qty, run_lengths)
    positions = np.repeat(state_held, run_lengths)
    equity = np.repeat(state_cash, run_lengths)
    equity += units * close

    trades = _trade_records(
        f.n_trades,
        f.entry_bar,
        f.exit_bar,
        f.has_exit,
        f.sign,
        f.t,
        f.qty,
        f.entry_px,
        f.exit_px,
        close[-1] if n else np.nan,
        f.notional,
        f.cash_before,
        f.cash_after,
        f.cash_in_trade,
        fee,
        fixed,
        ts_ns,
    )
    closed_pnls = trades["pnl"][~trades["is_open"]]
    metrics = (
        compute_metrics(equity, ts_ns, closed_pnls, positions, periods_per_year)
        if with_metrics
        else {}
    )
    return BacktestResult(
        equity=equity,
        positions=positions,
        units=units,
        trades=trades,
        metrics=metrics,
        timestamps=ts_ns,
        params=settings,
    )


@dataclass(frozen=True)
class Fills:
    """Every trade a target path makes: where it enters and exits, at what prices, and the cash
    before, in and after it. Shared by `run_backtest` and the optimiser's grid rows, so both do
    the same arithmetic, operation for operation (the same floats)."""

    changes: np.ndarray  # bars where the held exposure changes
    is_entry: np.ndarray  # per change: does it open a trade
    entry_change: np.ndarray  # positions of the entries within `changes`
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    has_exit: np.ndarray
    t: np.ndarray  # each trade's target exposure
    sign: np.ndarray
    qty: np.ndarray
    entry_px: np.ndarray
    exit_px: np.ndarray
    notional: np.ndarray
    cash_before: np.ndarray
    cash_in_trade: np.ndarray
    cash_after: np.ndarray  # only meaningful for closed trades
    n_trades: int  # trades before the cash could no longer pay the fixed fee


def fills_compute(
    open_: np.ndarray,
    changes: np.ndarray,
    change_target: np.ndarray,
    n: int,
    fee: float,
    slip: float,
    fixed: float,
    initial_cash: float,
    exit_open: np.ndarray | None = None,
) -> Fills:
    """The trades of a target path whose exposure changes to `change_target` at `changes`.
    `exit_open` replaces the open as the exit's base price where a protective exit fired."""
    is_entry = change_target != 0.0
    entry_change = np.flatnonzero(is_entry)  # positions within `changes`
    entry_bar = changes[entry_change]
    t = change_target[entry_change]
    sign = np.sign(t)
    abs_t = np.abs(t)
    # The change right after an entry is its exit; the last entry may have none (still open).
    has_exit = entry_change + 1 < changes.shape[0]
    closed = np.flatnonzero(has_exit)
    exit_bar = np.full(entry_bar.shape[0], n - 1, dtype=np.int64)
    exit_bar[closed] = changes[entry_change[closed] + 1]

    entry_px = open_[entry_bar] * (1.0 + slip * sign)
    exit_px = (open_ if exit_open is None else exit_open)[exit_bar] * (1.0 - slip * sign)
    # One closed trade maps cash E0 to E1 = alpha * E0 + beta (derivation in the docstring):
    # E1 = E0 - 2F + N * R with N = |t| (E0 - F) / (1 + fee).
    ratio = (sign - fee) * exit_px / entry_px - (sign + fee)
    q = abs_t * ratio / (1.0 + fee)
    alpha = 1.0 + q
    beta = -fixed * (2.0 + q)
    cash_before = _solve_affine(alpha, beta, float(initial_cash), has_exit)

    # Trades stop once the cash can no longer pay the fixed fee (see module docstring).
    ruined = np.flatnonzero(cash_before <= fixed)
    n_trades = int(ruined[0]) if ruined.shape[0] else entry_bar.shape[0]
    notional = abs_t * (cash_before - fixed) / (1.0 + fee)
    return Fills(
        changes=changes,
        is_entry=is_entry,
        entry_change=entry_change,
        entry_bar=entry_bar,
        exit_bar=exit_bar,
        has_exit=has_exit,
        t=t,
        sign=sign,
        qty=sign * notional / entry_px,
        entry_px=entry_px,
        exit_px=exit_px,
        notional=notional,
        cash_before=cash_before,
        cash_in_trade=cash_before - fixed - notional * (fee + sign),
        cash_after=alpha * cash_before + beta,
        n_trades=n_trades,
    )


def fill_states(
    f: Fills, held_values: np.ndarray, initial_cash: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cash, units, held) after each fill, the first entry before any: each holds until the next
    fill. `held_values` is what `held` records per change (exposure, or entered as bool)."""
    size = f.changes.shape[0] + 1
    kidx = np.cumsum(f.is_entry) - 1  # for an exit-only change: the trade being closed
    state_cash = np.empty(size, dtype=np.float64)
    state_qty = np.zeros(size, dtype=np.float64)
    state_held = np.zeros(size, dtype=held_values.dtype)
    state_cash[0] = initial_cash
    if f.changes.shape[0]:
        safe_k = np.maximum(kidx, 0)
        state_cash[1:] = np.where(f.is_entry, f.cash_in_trade[safe_k], f.cash_after[safe_k])
        state_qty[1:][f.entry_change] = f.qty
        state_held[1:] = held_values
        if f.n_trades < f.entry_bar.shape[0]:
            cut = f.entry_change[f.n_trades] + 1
            state_cash[cut:] = f.cash_before[f.n_trades]
            state_qty[cut:] = 0.0
            state_held[cut:] = 0
    return state_cash, state_qty, state_held


def _solve_affine(
    alpha: np.ndarray, beta: np.ndarray, start: float, has_exit: np.ndarray
) -> np.ndarray:
    """Cash before each trade for ``E[k+1] = alpha[k] * E[k] + beta[k]``, ``E[0] = start``.

    Closed form: ``E[k] = A[k] * (start + sum_{i<k} beta[i] / A[i+1])`` with ``A`` the running
    product of alpha. Only valid while the product stays positive; a trade with alpha <= 0 ends
    the account (cash after it is <= fee), so the trades after it are never entered and their
    cash values only need to be <= fee.
    """
    k = alpha.shape[0]
    out = np.empty(k, dtype=np.float64)
    if k == 0:
        return out
    # The last trade's alpha is for an exit that may not exist; it never feeds another trade.
    a = alpha[: k - 1]
    b = beta[: k - 1]
    bad = np.flatnonzero(a <= 0.0)
    m = int(bad[0]) if bad.shape[0] else k - 1  # trades 0..m are computable in closed form
    growth = np.empty(m + 1, dtype=np.float64)
    growth[0] = 1.0
    np.cumprod(a[:m], out=growth[1:])
    if np.any(b[:m] != 0.0):
        offsets = np.empty(m + 1, dtype=np.float64)
        offsets[0] = 0.0
        np.cumsum(b[:m] / growth[1:], out=offsets[1:])
        out[: m + 1] = growth * (start + offsets)
    else:
        out[: m + 1] = growth * start
    if m < k - 1:
        # Trade m wiped out the account; everything after it stays flat at that cash.
        out[m + 1 :] = a[m] * out[m] + b[m]
    return out


def _trade_records(
    n_trades: int,
    entry_bar: np.ndarray,
    exit_bar: np.ndarray,
    has_exit: np.ndarray,
    sign: np.ndarray,
    target: np.ndarray,
    qty: np.ndarray,
    entry_px: np.ndarray,
    exit_px: np.ndarray,
    last_close: float,
    notional: np.ndarray,
    cash_before: np.ndarray,
    cash_after: np.ndarray,
    cash_in_trade: np.ndarray,
    fee: float,
    fixed: float,
    ts_ns: np.ndarray | None,
) -> np.ndarray:
    sl = slice(0, n_trades)
    trades = np.empty(n_trades, dtype=TRADE_DTYPE)
    is_open = ~has_exit[sl]
    trades["entry_index"] = entry_bar[sl]
    trades["exit_index"] = exit_bar[sl]
    if ts_ns is not None:
        trades["entry_time"] = ts_ns[entry_bar[sl]].view("datetime64[ns]")
        trades["exit_time"] = ts_ns[exit_bar[sl]].view("datetime64[ns]")
    else:
        trades["entry_time"] = np.datetime64("NaT", "ns")
        trades["exit_time"] = np.datetime64("NaT", "ns")
    trades["side"] = sign[sl]
    trades["target"] = target[sl]
    abs_qty = np.abs(qty[sl])
    trades["qty"] = abs_qty
    trades["entry_price"] = entry_px[sl]
    trades["exit_price"] = np.where(is_open, last_close, exit_px[sl])
    entry_fees = fee * notional[sl] + fixed
    exit_fees = np.where(is_open, 0.0, fee * abs_qty * exit_px[sl] + fixed)
    trades["fees"] = entry_fees + exit_fees
    pnl = np.where(
        is_open,
        cash_in_trade[sl] + qty[sl] * last_close - cash_before[sl],
        cash_after[sl] - cash_before[sl],
    )
    trades["pnl"] = pnl
    trades["return"] = pnl / notional[sl]
    trades["is_open"] = is_open
    return trades


def backtest_strategy(
    strategy: Any, bars: pd.DataFrame, params: dict[str, Any] | None = None, **kwargs: Any
) -> BacktestResult:
    """Run `strategy.generate_signals(bars, params)` through `run_backtest`.

    `bars` has open/high/low/close/volume columns and a UTC DatetimeIndex. `params` is validated
    with the strategy's own rules first. `allow_short` defaults to the strategy's class flag;
    other keyword arguments go to `run_backtest`.
    """
    cleaned = strategy.validate_params(params)
    signals = strategy.generate_signals(bars, cleaned)
    kwargs.setdefault("allow_short", bool(getattr(strategy, "allow_short", False)))
    kwargs.setdefault(
        "timestamps", bars.index if isinstance(bars.index, pd.DatetimeIndex) else None
    )
    result = run_backtest(
        bars["open"].to_numpy(dtype=np.float64),
        bars["close"].to_numpy(dtype=np.float64),
        np.asarray(signals, dtype=np.float64),
        **kwargs,
    )
    result.params["strategy"] = getattr(strategy, "name", type(strategy).__name__)
    result.params["strategy_params"] = dict(cleaned)
    return result


def _iso(ns: int | np.integer) -> str | None:
    if ns == np.iinfo(np.int64).min:  # NaT
        return None
    return (
        dt.datetime.fromtimestamp(int(ns) // 1_000_000_000, tz=dt.UTC)
        .replace(microsecond=(int(ns) % 1_000_000_000) // 1000)
        .isoformat()
    )


def result_to_dict(
    result: BacktestResult, max_points: int = 1000, max_trades: int | None = None
) -> dict[str, Any]:
    """A JSON-safe summary for the API: metrics, trades, and a downsampled equity curve.

    The curve keeps at most `max_points` evenly spaced bars, always including the first and
    last. `max_trades` keeps only the most recent trades (all of them by default);
    `trades_total` always says how many there were. Missing timestamps become the bar index.
    """
    n = result.equity.shape[0]
    if n and max_points > 0:
        picks = np.unique(np.linspace(0, n - 1, min(max_points, n)).round().astype(np.int64))
    else:
        picks = np.empty(0, dtype=np.int64)
    if result.timestamps is not None:
        xs: list[Any] = [_iso(v) for v in result.timestamps[picks]]
    else:
        xs = picks.tolist()
    curve = [
        {"t": x, "i": int(i), "equity": _json_float(e), "position": _json_float(p)}
        for x, i, e, p in zip(xs, picks, result.equity[picks], result.positions[picks], strict=True)
    ]
    trades = result.trades if max_trades is None else result.trades[-max_trades:]
    has_time = result.timestamps is not None
    entry_ns = trades["entry_time"].view(np.int64).tolist()
    exit_ns = trades["exit_time"].view(np.int64).tolist()
    trade_rows = [
        {
            "entry_index": int(row["entry_index"]),
            "exit_index": int(row["exit_index"]),
            "entry_time": _iso(entry) if has_time else None,
            "exit_time": _iso(exit_) if has_time else None,
            "side": "long" if row["side"] > 0 else "short",
            "target": _json_float(row["target"]),
            "qty": _json_float(row["qty"]),
            "entry_price": _json_float(row["entry_price"]),
            "exit_price": _json_float(row["exit_price"]),
            "fees": _json_float(row["fees"]),
            "pnl": _json_float(row["pnl"]),
            "return": _json_float(row["return"]),
            "is_open": bool(row["is_open"]),
        }
        for row, entry, exit_ in zip(trades, entry_ns, exit_ns, strict=True)
    ]
    return {
        "params": dict(result.params),
        "metrics": dict(result.metrics),
        "trades_total": int(result.trades.shape[0]),
        "trades": trade_rows,
        "equity_curve": curve,
    }


def _json_float(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
