"""manage.py backtest NAME --symbols SPY,QQQ --days 365 --param fast=5 --param slow=20"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.exceptions import DomainError

METRIC_ROWS = [
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("volatility", "Volatility (ann.)", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration_bars", "Max drawdown duration (bars)", "int"),
    ("calmar", "Calmar", "num"),
    ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("expectancy", "Expectancy", "money"),
    ("exposure", "Exposure", "pct"),
    ("final_equity", "Final equity", "money"),
]


def format_metric(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value)}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.3f}"


def parse_param(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise CommandError(f"--param {text!r}: expected key=value")
    try:
        value = json.loads(raw)  # 5 -> int, 0.5 -> float, true -> bool
    except json.JSONDecodeError:
        value = raw
    return key, value


class Command(BaseCommand):
    help = "Backtest a strategy plugin (or a saved config by name) on stored or fetched bars."

    def add_arguments(self, parser):
        parser.add_argument("name", help="strategy plugin name, or a StrategyConfig name")
        parser.add_argument("--symbols", help="comma-separated, e.g. SPY,QQQ")
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--fee-bps", type=float, default=0.0)
        parser.add_argument("--slippage-bps", type=float, default=None)
        parser.add_argument("--cash", type=float, default=None, help="initial cash")
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")

    def handle(self, *args, name, symbols, days, param, fee_bps, slippage_bps, cash, json, **kw):
        from strategies import registry
        from strategies.models import StrategyConfig
        from strategies.services import strategy_backtest

        params = dict(parse_param(p) for p in param)
        config = None
        if registry.get_strategy(name) is None:
            config = StrategyConfig.objects.filter(name=name).first()
            if config is None:
                loaded = ", ".join(sorted(registry.get_registry().strategies))
                raise CommandError(
                    f"no strategy plugin or config named {name!r} (loaded: {loaded})"
                )
        symbol_list = (
            [s for s in symbols.split(",") if s.strip()]
            if symbols
            else (config.symbols if config else settings.PRIMARY_SYMBOLS)
        )
        bar = tqdm(total=len(symbol_list), desc="backtest", unit="symbol", file=self.stderr)

        def progress(symbol: str) -> None:
            if bar.n or bar.postfix:
                bar.update(1)
            bar.set_postfix_str(symbol)

        try:
            result = strategy_backtest(
                plugin=config.plugin if config else name,
                symbols=symbol_list,
                days=days,
                params={**(config.params if config else {}), **params},
                allocation=config.allocation if config else 1,
                initial_cash=cash,
                fee_bps=fee_bps,
                slippage_bps=slippage_bps,
                progress=progress,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.update(bar.total - bar.n)
            bar.close()
        if json:
            import json as json_module

            self.stdout.write(json_module.dumps(result, indent=2))
            return
        self.stdout.write(self.render(result))

    def render(self, result: dict) -> str:
        symbols = result["symbols"]
        head = ["Metric", "Portfolio", *symbols]
        rows = [head]
        for key, label, kind in METRIC_ROWS:
            row = [label, format_metric(result["metrics"].get(key), kind)]
            per = result["per_symbol"]
            row += [format_metric(per[s]["metrics"].get(key), kind) for s in symbols]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        sources = sorted({v["data_source"] for v in result["per_symbol"].values()})
        lines = [
            f"{result['plugin']} {json_dumps(result['params'])} on {', '.join(symbols)}, "
            f"{result['days']} days ({result['start'][:10]} .. {result['end'][:10]}), "
            f"bars from {', '.join(sources)}",
        ]
        for i, row in enumerate(rows):
            lines.append(
                "  ".join(
                    cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j])
                    for j, cell in enumerate(row)
                )
            )
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines) + "\n"


def json_dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
