"""Managing strategies in admin: validated params, actions, backtest page, plugin errors."""

from __future__ import annotations

import pytest
from django.urls import reverse

from strategies.models import StrategyConfig
from trading.models import Order

CHANGELIST = "/admin/strategies/strategyconfig/"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def form(**overrides):
    data = {
        "name": "sma",
        "plugin": "sma_crossover",
        "symbols": '["SPY"]',
        "params": '{"fast": 5}',
        "allocation": "0.5",
        "timeframe": "5Min",
    }
    return {**data, **overrides}


def test_adding_a_config_fills_in_default_params(staff):
    response = staff.post(f"{CHANGELIST}add/", form())
    assert response.status_code == 302
    assert StrategyConfig.objects.get().params == {"fast": 5, "slow": 30}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"params": '{"fast": 50}'}, "params.fast: must be smaller than slow"),
        ({"params": '{"fast": "ten"}'}, "params.fast: must be of type int"),
        ({"params": '{"speed": 1}'}, "params.speed: unknown parameter"),
        ({"symbols": '["SPY", "SPY"]'}, "symbols: lists a symbol twice"),
        ({"allocation": "1.5"}, "allocation: must be in (0, 1]"),
    ],
)
def test_bad_params_are_form_errors_naming_the_parameter(staff, overrides, message):
    response = staff.post(f"{CHANGELIST}add/", form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not StrategyConfig.objects.exists()


def test_actions_enable_disable_and_run_now(staff, session, market, make_config):
    config = make_config(enabled=False)
    staff.post(CHANGELIST, {"action": "enable", "_selected_action": [config.pk]})
    config.refresh_from_db()
    assert config.enabled
    staff.post(CHANGELIST, {"action": "disable", "_selected_action": [config.pk]})
    config.refresh_from_db()
    assert not config.enabled
    response = staff.post(
        CHANGELIST, {"action": "run_now", "_selected_action": [config.pk]}, follow=True
    )
    assert "SPY:" in response.content.decode()
    config.refresh_from_db()
    assert config.last_run_at is not None and "SPY" in config.last_signal


def test_enabling_an_invalid_config_is_refused(staff, make_config):
    config = make_config(enabled=False, params={"fast": 40})
    response = staff.post(
        CHANGELIST, {"action": "enable", "_selected_action": [config.pk]}, follow=True
    )
    assert "params.fast: must be smaller than slow" in response.content.decode()
    config.refresh_from_db()
    assert not config.enabled


def test_backtest_action_queues_a_research_run_and_opens_its_page(staff, market, make_config):
    from strategies.research.models import ResearchRun
    from strategies.research.services import run_execute

    config = make_config(params={"fast": 3, "slow": 10})
    response = staff.post(CHANGELIST, {"action": "backtest", "_selected_action": [config.pk]})
    assert response.status_code == 302
    form = staff.get(response.url)
    assert 'name="days"' in form.content.decode()
    assert not ResearchRun.objects.exists()  # showing the form computes and queues nothing
    submitted = staff.post(response.url, {"days": "10"})
    run = ResearchRun.objects.get()
    assert submitted.status_code == 302 and submitted.url == f"/research/runs/{run.pk}/"
    assert run.requested_by.startswith("user:") and run.inputs["days"] == 10
    assert run_execute(run_id=run.pk).status == "done"
    page = staff.get(submitted.url).content.decode()
    assert f"Run #{run.pk}" in page and 'id="heatmap"' in page
    assert not Order.objects.exists()
    bad = staff.post(
        reverse("admin:strategies_strategyconfig_backtest", args=[config.pk]), {"days": "x"}
    )
    assert "days: must be an integer" in bad.content.decode()
    assert ResearchRun.objects.count() == 1


def test_plugin_load_errors_are_shown_and_reload_works(staff, plugin_dir):
    plugin_dir("broken.py", "raise RuntimeError('cannot import me')\n")
    assert "cannot import me" in staff.get(CHANGELIST).content.decode()
    plugins_url = reverse("admin:strategies_strategyconfig_plugins")
    assert "cannot import me" in staff.get(plugins_url).content.decode()
    (plugin_dir.directory / "broken.py").unlink()
    staff.post(plugins_url)
    assert "cannot import me" not in staff.get(CHANGELIST).content.decode()
