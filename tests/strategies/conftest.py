from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from strategies import registry

FIXED_TARGET = """
import pandas as pd
from strategies.base import Param, Strategy


class FixedTarget(Strategy):
    name = "fixed_target"
    params = {
        "target": Param(float, 1.0, min=-1.0, max=1.0),
        "explode": Param(bool, False),
    }
    allow_short = True

    def generate_signals(self, bars, params):
        if params["explode"]:
            raise RuntimeError("boom")
        return pd.Series(params["target"], index=bars.index)
"""


@pytest.fixture
def plugin_dir(settings, tmp_path):
    """STRATEGIES_DIR pointed at an empty folder; `write(name, code)` drops a plugin file and
    reloads. The registry is rebuilt from the real settings after the test."""
    directory = tmp_path / "plugins"
    directory.mkdir()
    settings.STRATEGIES_DIR = directory

    def write(filename: str, code: str) -> Path:
        path = directory / filename
        path.write_text(textwrap.dedent(code))
        registry.reload()
        return path

    write.directory = directory
    registry.reload()
    yield write
    registry._registry = None


@pytest.fixture
def fixed_target(plugin_dir):
    plugin_dir("fixed_target.py", FIXED_TARGET)
    return registry.get_strategy("fixed_target")


@pytest.fixture
def make_config(db):
    from strategies.models import StrategyConfig

    def make(**kwargs):
        defaults = {
            "name": kwargs.get("plugin", "sma_crossover")
            + "-"
            + ",".join(kwargs.get("symbols", ["SPY"])),
            "plugin": "sma_crossover",
            "symbols": ["SPY"],
            "params": {},
            "allocation": Decimal("0.5"),
            "enabled": True,
        }
        return StrategyConfig.objects.create(**{**defaults, **kwargs})

    return make
