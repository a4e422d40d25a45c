"""manage.py optimize NAME --grid fast=5:50:5 --grid slow=20:200:10 --constraint "fast < slow"

Runs a grid search (or, with --walk-forward TRAIN:TEST, a walk-forward) as a research run, in
this process, with a progress bar; the run is stored and shows on the research page.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from strategies.management.commands.backtest import format_metric, parse_param
from trading.exceptions import DomainError


def parse_grid(text: str) -> tuple[str, object]:
    """`fast=5:50:5` (start:stop:step, stop included) or `fast=5,10,20` (a list)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or not raw:
        raise CommandError(f"--grid {text!r}: expected name=start:stop:step or name=v1,v2,...")
    try:
        if ":" in raw:
            start, stop, step = (json.loads(p) for p in raw.split(":"))
            return key, {"start": start, "stop": stop, "step": step}
        return key, [json.loads(v) for v in raw.split(",")]
    except (ValueError, json.JSONDecodeError) as exc:
        raise CommandError(f"--grid {text!r}: {exc}") from exc


class Command(BaseCommand):
    help = "Grid-search (or walk-forward) a strategy plugin or saved config's params."

    def add_arguments(self, parser):
        parser.add_argument("name", help="strategy plugin name, or a StrategyConfig name")
        parser.add_argument("--symbols", help="comma-separated, e.g. SPY,QQQ")
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--grid", action="append", default=[], metavar="NAME=RANGE")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--constraint", action="append", default=[], metavar="'a < b'")
        parser.add_argument("--objective", default="sharpe")
        parser.add_argument("--min-trades", type=int, default=0)
        parser.add_argument("--walk-forward", metavar="TRAIN_DAYS:TEST_DAYS")
        parser.add_argument("--anchored", action="store_true", help="anchored walk-forward")
        parser.add_argument("--fee-bps", type=float, default=0.0)
        parser.add_argument("--slippage-bps", type=float, default=None)
        parser.add_argument("--cash", type=float, default=None, help="initial cash")
        parser.add_argument("--top", type=int, default=10)
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")

    def handle(self, *args, **opts):
        from strategies import registry
        from strategies.models import StrategyConfig
        from strategies.research.models import RunKind, RunStatus
        from strategies.research.services import Principal, run_execute, run_submit

        name = opts["name"]
        config = None
        if registry.get_strategy(name) is None:
            config = StrategyConfig.objects.filter(name=name).first()
            if config is None:
                loaded = ", ".join(sorted(registry.get_registry().strategies))
                raise CommandError(
                    f"no strategy plugin or config named {name!r} (loaded: {loaded})"
                )
        if not opts["grid"]:
            raise CommandError("give at least one --grid NAME=START:STOP:STEP")
        body = {
            "plugin": name if config is None else config.plugin,
            "days": opts["days"],
            "grid": dict(parse_grid(g) for g in opts["grid"]),
            "params": dict(parse_param(p) for p in opts["param"]),
            "constraints": opts["constraint"],
            "objective": opts["objective"],
            "min_trades": opts["min_trades"],
            "fee_bps": opts["fee_bps"],
        }
        if opts["symbols"]:
            body["symbols"] = [s for s in opts["symbols"].split(",") if s.strip()]
        elif config is None:
            body["symbols"] = list(settings.PRIMARY_SYMBOLS)
        if opts["slippage_bps"] is not None:
            body["slippage_bps"] = opts["slippage_bps"]
        if opts["cash"] is not None:
            body["initial_cash"] = opts["cash"]
        if opts["walk_forward"]:
            train, sep, test = opts["walk_forward"].partition(":")
            if not sep or not train.isdigit() or not test.isdigit():
                raise CommandError("--walk-forward expects TRAIN_DAYS:TEST_DAYS, e.g. 180:30")
            body["walk_forward"] = {
                "train_days": int(train),
                "test_days": int(test),
                "anchored": opts["anchored"],
            }
        try:
            run = run_submit(
                kind=RunKind.OPTIMIZE,
                body=body,
                principal=Principal(),
                config=config,
                enqueue=False,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        bar = tqdm(total=1000, desc=f"{run.kind} #{run.pk}", unit="‰", file=self.stderr)

        def progress(fraction: float, message: str) -> None:
            bar.update(int(fraction * 1000) - bar.n)
            bar.set_postfix_str(message[:40])

        try:
            run = run_execute(run_id=run.pk, on_progress=progress)
        finally:
            bar.close()
        if run.status != RunStatus.DONE:
            raise CommandError(f"run #{run.pk} {run.status}: {run.error or run.message}")
        if opts["json"]:
            self.stdout.write(json.dumps(run.result, indent=2))
            return
        self.stdout.write(self.render(run, opts["top"]))

    def render(self, run, top: int) -> str:
        result = run.result
        lines = [
            f"{run.kind} #{run.pk} {run.plugin} on {', '.join(run.inputs['symbols'])}, "
            f"{run.inputs['days']} days, objective {result['objective']}"
        ]
        num = lambda v: format_metric(v, "num")  # noqa: E731
        if run.kind == "walk_forward":
            lines.append(
                f"{'fold':>4}  {'train':<22}  {'test':<22}  {'best':<22} {'IS':>7} {'OOS':>8}"
            )
            for f in result["folds"]:
                train = f"{f['train_start'][:10]}..{f['train_end'][:10]}"
                test = f"{f['test_start'][:10]}..{f['test_end'][:10]}"
                best = json.dumps(f["best_params"])
                lines.append(
                    f"{f['fold']:>4}  {train:<22}  {test:<22}  {best:<22} "
                    f"{num(f['train_objective']):>7} {num(f['test_objective']):>8}"
                )
            oos = format_metric((result["oos_metrics"] or {}).get("total_return"), "pct")
            lines.append(
                f"in-sample mean {num(result['in_sample_mean'])}, out-of-sample mean "
                f"{num(result['out_of_sample_mean'])}, stitched out-of-sample return {oos}"
            )
            return "\n".join(lines) + "\n"
        lines.append(
            f"{result['combinations']} combinations ({result['excluded']} excluded by constraints, "
            f"{result['eligible']} with enough trades) in {result['seconds']} s"
        )
        head = (
            f"{'rank':>4}  {'params':<28} {'sharpe':>8} {'return':>9} {'max dd':>8} {'trades':>7}"
        )
        lines.append(head)
        for row in result["ranking"][:top]:
            ret = format_metric(row["total_return"], "pct")
            dd = format_metric(row["max_drawdown"], "pct")
            trades = format_metric(row["trades"], "int")
            lines.append(
                f"{row['rank']:>4}  {json.dumps(row['params']):<28} "
                f"{num(row['sharpe']):>8} {ret:>9} {dd:>8} {trades:>7}"
            )
        return "\n".join(lines) + "\n"
