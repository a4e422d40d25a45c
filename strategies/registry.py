"""The strategy plugin loader: built-ins, every *.py in STRATEGIES_DIR, and the entry-point group
`tradingrobot.strategies`. A plugin that fails to import or validate is recorded with its error
and never takes the others down.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from strategies.base import ParamError, Strategy

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tradingrobot.strategies"
BUILTIN_MODULES = [
    "strategies.builtin.sma_crossover",
    "strategies.builtin.rsi_mean_reversion",
    "strategies.builtin.bollinger_breakout",
    "strategies.builtin.momentum",
]


@dataclass
class Registry:
    strategies: dict[str, type[Strategy]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    # origin (module path, file or entry point) -> error text
    errors: dict[str, str] = field(default_factory=dict)


_lock = threading.Lock()
_registry: Registry | None = None


def _strategy_classes(module) -> list[type[Strategy]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Strategy) and obj is not Strategy and obj.__module__ == module.__name__
    ]


def _smoke_bars(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    index = pd.date_range("2024-01-02 14:30", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1e3},
        index=index,
    )


def _check(cls: type[Strategy]) -> None:
    """A plugin validates when it has a name, valid defaults, and its defaults produce one
    target per bar in [-1, 1] (or NaN) on a small random series."""
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"{cls.__qualname__} has no name")
    try:
        params = cls.validate_params({})
    except ParamError as exc:
        raise TypeError(f"{cls.__qualname__}: default params are invalid: {exc}") from exc
    bars = _smoke_bars()
    signals = np.asarray(cls().generate_signals(bars, params), dtype=np.float64)
    if signals.shape != (len(bars),):
        raise TypeError(
            f"{cls.__qualname__}.generate_signals returned shape {signals.shape} "
            f"for {len(bars)} bars"
        )
    finite = signals[~np.isnan(signals)]
    if finite.size and (finite.min() < -1.0 or finite.max() > 1.0):
        raise TypeError(f"{cls.__qualname__}.generate_signals returned values outside [-1, 1]")


def _add(registry: Registry, cls: type[Strategy], origin: str) -> None:
    try:
        _check(cls)
    except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
        registry.errors[origin] = f"{type(exc).__name__}: {exc}"
        return
    if cls.name in registry.strategies and registry.strategies[cls.name] is not cls:
        registry.errors[origin] = (
            f"duplicate strategy name {cls.name!r} (first from {registry.origins[cls.name]})"
        )
        return
    registry.strategies[cls.name] = cls
    registry.origins[cls.name] = origin


def _load_file(path: Path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    spec = importlib.util.spec_from_file_location(f"tradingrobot_plugin_{path.stem}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load() -> Registry:
    registry = Registry()
    for module_path in BUILTIN_MODULES:
        module = importlib.import_module(module_path)
        for cls in _strategy_classes(module):
            _add(registry, cls, module_path)
    directory = Path(settings.STRATEGIES_DIR)
    if directory.is_dir():
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = _load_file(path)
            except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit... stay contained
                registry.errors[str(path)] = f"{type(exc).__name__}: {exc}"
                continue
            classes = _strategy_classes(module)
            if not classes:
                registry.errors[str(path)] = "no Strategy subclass found"
            for cls in classes:
                _add(registry, cls, str(path))
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {entry_point.name} ({entry_point.value})"
        try:
            obj = entry_point.load()
        except BaseException as exc:  # noqa: BLE001
            registry.errors[origin] = f"{type(exc).__name__}: {exc}"
            continue
        if inspect.isclass(obj) and issubclass(obj, Strategy):
            _add(registry, obj, origin)
        else:
            registry.errors[origin] = "entry point is not a Strategy subclass"
    for origin, error in registry.errors.items():
        logger.warning("strategy plugin %s failed to load: %s", origin, error)
    return registry


def get_registry() -> Registry:
    global _registry
    with _lock:
        if _registry is None:
            _registry = load()
        return _registry


def reload() -> Registry:
    global _registry
    with _lock:
        _registry = load()
        return _registry


def get_strategy(name: str) -> type[Strategy] | None:
    return get_registry().strategies.get(name)


def plugins_describe() -> list[dict]:
    """Every plugin the loader saw, loaded or not, for the API and admin (JSON-ready)."""
    current = get_registry()
    out = [
        {
            "name": name,
            "description": cls.description or (cls.__doc__ or "").strip(),
            "origin": current.origins[name],
            "allow_short": bool(cls.allow_short),
            "params_schema": cls.params_schema(),
            "defaults": cls.validate_params({}),
            "load_error": None,
        }
        for name, cls in sorted(current.strategies.items())
    ]
    out.extend(
        {
            "name": None,
            "description": "",
            "origin": origin,
            "allow_short": False,
            "params_schema": {},
            "defaults": {},
            "load_error": error,
        }
        for origin, error in sorted(current.errors.items())
    )
    return out
