"""The plugin loader: folder files, broken files, entry points, reload without a restart."""

from __future__ import annotations

import sys
import textwrap

import pytest

from strategies import registry

GOOD = """
import pandas as pd
from strategies.base import Param, Strategy


class AlwaysFlat(Strategy):
    name = "always_flat"
    params = {"level": Param(float, 0.0, min=0.0, max=1.0)}

    def generate_signals(self, bars, params):
        return pd.Series(params["level"], index=bars.index)
"""


def test_a_good_file_in_the_folder_is_loaded(plugin_dir):
    path = plugin_dir("flat.py", GOOD)
    reg = registry.get_registry()
    assert reg.strategies["always_flat"].params["level"].default == 0.0
    assert reg.origins["always_flat"] == str(path)
    assert reg.errors == {}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise SystemExit('bye')\n", "SystemExit"),
        ("import no_such_module_xyz\n", "ModuleNotFoundError"),
        (GOOD.replace('"always_flat"', '""'), "has no name"),
        (GOOD.replace("Param(float, 0.0,", "Param(float, 5.0,"), "default params are invalid"),
        (GOOD.replace('params["level"]', "7.0"), "outside [-1, 1]"),
        (GOOD.replace("index=bars.index)", "index=bars.index[:3])"), "returned shape"),
        ("x = 1\n", "no Strategy subclass found"),
    ],
)
def test_a_broken_file_is_reported_and_never_hides_the_others(plugin_dir, code, expected):
    plugin_dir("good.py", GOOD)
    bad = plugin_dir("bad.py", code)
    reg = registry.get_registry()
    assert expected in reg.errors[str(bad)]
    assert {"always_flat", "sma_crossover", "momentum"} <= set(reg.strategies)
    described = {p["origin"]: p for p in registry.plugins_describe()}
    assert expected in described[str(bad)]["load_error"]
    assert described[str(plugin_dir.directory / "good.py")]["load_error"] is None


def test_a_duplicate_name_keeps_the_first_and_reports_the_second(plugin_dir):
    dup = plugin_dir("dup.py", GOOD.replace('"always_flat"', '"sma_crossover"'))
    reg = registry.get_registry()
    assert "duplicate strategy name 'sma_crossover'" in reg.errors[str(dup)]
    assert reg.origins["sma_crossover"] == "strategies.builtin.sma_crossover"


def test_reload_picks_up_new_changed_and_removed_files(plugin_dir):
    assert registry.get_strategy("always_flat") is None
    path = plugin_dir("flat.py", GOOD)
    assert registry.get_strategy("always_flat") is not None
    path.write_text(textwrap.dedent(GOOD).replace("Param(float, 0.0,", "Param(float, 0.5,"))
    registry.reload()
    assert registry.get_strategy("always_flat").params["level"].default == 0.5
    path.unlink()
    registry.reload()
    assert registry.get_strategy("always_flat") is None


@pytest.fixture
def installed_package(tmp_path, monkeypatch):
    """A throwaway pip-installed-looking package: a module plus a dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "trp_ext_momo.py").write_text(textwrap.dedent(GOOD).replace("always_flat", "ext_flat"))
    (site / "trp_ext_broken.py").write_text("raise ImportError('missing native lib')\n")
    dist = site / "trp_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: trp-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[tradingrobot.strategies]\n"
        "ext_flat = trp_ext_momo:AlwaysFlat\n"
        "broken = trp_ext_broken:Thing\n"
        "not_a_strategy = textwrap:dedent\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    for name in ("trp_ext_momo", "trp_ext_broken"):
        sys.modules.pop(name, None)


def test_entry_point_plugins_load_and_their_failures_are_reported(plugin_dir, installed_package):
    reg = registry.reload()
    assert "ext_flat" in reg.strategies
    assert reg.origins["ext_flat"].startswith("entry point ext_flat")
    errors = {origin.split(" (")[0]: error for origin, error in reg.errors.items()}
    assert "missing native lib" in errors["entry point broken"]
    assert errors["entry point not_a_strategy"] == "entry point is not a Strategy subclass"
    assert "sma_crossover" in reg.strategies
