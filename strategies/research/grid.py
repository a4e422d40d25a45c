"""Parameter grids, constraints and objectives for searches (no Django).

A grid names some of a strategy's declared params, each as a list of values or a range
`{"start", "stop", "step"}` (stop included); params it does not name keep the base value.
Constraints are texts `"<a> <op> <b>"` with `a`/`b` param names or numbers and `op` one of
`< <= > >= == !=`; a combination the strategy's own rules refuse (`check_params`) is left out
too. Every mistake is an `InvalidStrategyConfig` naming the field (`grid.fast`, `constraints[0]`).
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from strategies import protective
from strategies.base import ParamError, Strategy
from strategies.exceptions import InvalidStrategyConfig

# Objective -> True if larger is better.
OBJECTIVES: dict[str, bool] = {
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "total_return": True,
    "profit_factor": True,
    "max_drawdown": False,
}
OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
CONSTRAINT_RE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*|-?\d+(?:\.\d+)?)\s*(<=|>=|==|!=|<|>)\s*"
    r"([A-Za-z_][A-Za-z0-9_]*|-?\d+(?:\.\d+)?)\s*$"
)
MAX_VALUES_PER_PARAM = 1000


@dataclass(frozen=True)
class Constraint:
    left: str | float
    op: str
    right: str | float

    def holds(self, params: dict[str, Any]) -> bool:
        a = params[self.left] if isinstance(self.left, str) else self.left
        b = params[self.right] if isinstance(self.right, str) else self.right
        return bool(OPERATORS[self.op](a, b))

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class Search:
    """A validated search: the combinations to evaluate and how to rank them."""

    combos: list[dict[str, Any]]  # full, cleaned params of each combination, in grid order
    axes: dict[str, list[Any]]  # each searched param's values, in order
    constraints: list[Constraint]
    objective: str
    min_trades: int
    excluded: int  # combinations the constraints or the strategy's rules left out


def _range_values(param: Any, field: str, spec: dict) -> list[Any]:
    """The values of a `{start, stop, step}` range, checked."""
    unknown = sorted(set(spec) - {"start", "stop", "step"})
    if unknown:
        raise InvalidStrategyConfig(field, f"unknown key {unknown[0]!r} (use start, stop, step)")
    if param.type not in (int, float):
        raise InvalidStrategyConfig(
            field, f"a range needs a number parameter, not {param.type.__name__}"
        )
    try:
        start, stop, step = (spec[k] for k in ("start", "stop", "step"))
    except KeyError as exc:
        raise InvalidStrategyConfig(field, f"a range needs {exc.args[0]!r}") from None
    for key, value in (("start", start), ("stop", stop), ("step", step)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidStrategyConfig(field, f"{key} must be a number")
    if param.type is int and not all(float(v).is_integer() for v in (start, stop, step)):
        raise InvalidStrategyConfig(field, "start, stop and step must be whole numbers")
    if step <= 0:
        raise InvalidStrategyConfig(field, "step must be positive")
    if stop < start:
        raise InvalidStrategyConfig(field, "stop must not be below start")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_VALUES_PER_PARAM:
        raise InvalidStrategyConfig(field, f"more than {MAX_VALUES_PER_PARAM} values")
    if param.type is int:
        return [int(start) + i * int(step) for i in range(count)]
    return [round(start + i * step, 12) for i in range(count)]


def _values(cls: type[Strategy], name: str, spec: Any) -> list[Any]:
    field = f"grid.{name}"
    param = cls.params[name]
    if isinstance(spec, list):
        if not spec:
            raise InvalidStrategyConfig(field, "must list at least one value")
        raw = spec
    elif isinstance(spec, dict):
        raw = _range_values(param, field, spec)
    else:
        raise InvalidStrategyConfig(field, "must be a list of values or {start, stop, step}")
    if len(raw) > MAX_VALUES_PER_PARAM:
        raise InvalidStrategyConfig(field, f"more than {MAX_VALUES_PER_PARAM} values")
    cleaned = []
    for value in raw:
        try:
            cleaned.append(param.clean(name, value))
        except ParamError as exc:
            raise InvalidStrategyConfig(field, exc.message) from None
    if len(set(cleaned)) != len(cleaned):
        raise InvalidStrategyConfig(field, "lists a value twice")
    return cleaned


def _constraint(cls: type[Strategy], index: int, text: Any) -> Constraint:
    field = f"constraints[{index}]"
    if not isinstance(text, str):
        raise InvalidStrategyConfig(field, "must be a text like 'fast < slow'")
    match = CONSTRAINT_RE.match(text)
    if not match:
        raise InvalidStrategyConfig(field, f"{text!r} is not '<param> <op> <param or number>'")
    sides: list[str | float] = []
    for token in (match.group(1), match.group(3)):
        if re.match(r"^-?\d", token):
            sides.append(float(token))
        elif token not in cls.params:
            raise InvalidStrategyConfig(field, f"{token!r} is not a parameter of {cls.name}")
        else:
            sides.append(token)
    return Constraint(sides[0], match.group(2), sides[1])


def _refuse_exits(base: dict[str, Any]) -> None:
    declared = sorted(set(base) & set(protective.KEYS))
    if declared:
        # The optimiser's shared fast path does not simulate them; a backtest does.
        raise InvalidStrategyConfig(
            f"params.{declared[0]}",
            "protective exits are simulated by backtests, not by grid searches or walk-forwards",
        )


def search_build(
    cls: type[Strategy],
    *,
    base_params: dict[str, Any] | None,
    grid: Any,
    constraints: Any = None,
    objective: Any = "sharpe",
    min_trades: Any = 0,
    max_combos: int = 10_000,
) -> Search:
    """Validate a grid search against `cls` and expand it into combinations."""
    if not isinstance(grid, dict) or not grid:
        raise InvalidStrategyConfig("grid", "must name at least one parameter")
    unknown = sorted(set(grid) - set(cls.params))
    if unknown:
        raise InvalidStrategyConfig(f"grid.{unknown[0]}", f"is not a parameter of {cls.name}")
    if objective not in OBJECTIVES:
        raise InvalidStrategyConfig("objective", f"must be one of {sorted(OBJECTIVES)}")
    if isinstance(min_trades, bool) or not isinstance(min_trades, int) or min_trades < 0:
        raise InvalidStrategyConfig("min_trades", "must be a non-negative integer")
    if constraints is None:
        constraints = []
    if not isinstance(constraints, list):
        raise InvalidStrategyConfig("constraints", "must be a list of texts like 'fast < slow'")
    base = dict(base_params or {})
    _refuse_exits(base)
    unknown_base = sorted(set(base) - set(cls.params))
    if unknown_base:
        raise InvalidStrategyConfig(f"params.{unknown_base[0]}", "unknown parameter")
    for name, value in base.items():
        try:
            base[name] = cls.params[name].clean(name, value)
        except ParamError as exc:
            raise InvalidStrategyConfig(f"params.{name}", exc.message) from None
    axes = {name: _values(cls, name, spec) for name, spec in grid.items()}
    parsed = [_constraint(cls, i, text) for i, text in enumerate(constraints)]
    total = math.prod(len(v) for v in axes.values())
    if total > max_combos:
        raise InvalidStrategyConfig("grid", f"{total} combinations; at most {max_combos}")
    names = list(axes)
    combos: list[dict[str, Any]] = []
    excluded = 0
    for values in itertools.product(*(axes[n] for n in names)):
        candidate = base | dict(zip(names, values, strict=True))
        try:
            cleaned = cls.validate_params(candidate)
        except ParamError:
            excluded += 1  # the strategy's own cross-parameter rule (e.g. fast < slow)
            continue
        if all(c.holds(cleaned) for c in parsed):
            combos.append(cleaned)
        else:
            excluded += 1
    if not combos:
        raise InvalidStrategyConfig(
            "constraints", "no combination of the grid satisfies the constraints"
        )
    return Search(combos, axes, parsed, objective, min_trades, excluded)


def objective_key(objective: str, metrics: dict[str, Any]) -> float:
    """A sort key where larger is better; undefined values rank last."""
    value = metrics.get(objective)
    if value is None:
        return -math.inf
    return float(value) if OBJECTIVES[objective] else -float(value)
