"""Research runs through the API: 202 + the run's URL, the worker's lifecycle, progress events,
cancel, limits, and no request doing the work itself."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
import redis as redis_lib

from strategies.research.models import ResearchRun, RunStatus
from strategies.research.services import Principal, run_cancel, run_execute
from strategies.services import strategy_backtest
from streaming.publish import wire_split
from streaming.redis import stream_channel


@pytest.fixture
def config(make_config):
    return make_config(name="sma spy", symbols=["SPY"], params={"fast": 5, "slow": 20})


def _submit(client, config, body, path="backtest"):
    return client.post(f"/api/v1/strategies/{config.pk}/{path}", body, format="json")


def test_backtest_is_a_job_answered_202_with_the_runs_url(reader, config, market):
    response = _submit(
        reader, config, {"days": 20, "symbols": ["SPY", "QQQ"], "params": {"fast": 3}}
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "backtest"
    assert response["Location"] == body["url"] and body["url"].endswith(
        f"/api/v1/research/runs/{body['id']}"
    )
    assert body["requested_by"].startswith("key:")
    # The worker's part.
    run = run_execute(run_id=body["id"])
    assert run.status == RunStatus.DONE and run.progress == 1.0
    detail = reader.get(f"/api/v1/research/runs/{body['id']}").json()
    result = detail["result"]
    assert detail["status"] == "done" and detail["seconds"] is not None
    assert result["params"] == {"fast": 3, "slow": 20}
    assert (
        result["metrics"]["trades"]
        == sum(result["per_symbol"][s]["metrics"]["trades"] for s in ("SPY", "QQQ"))
        > 0
    )
    assert result["per_symbol"]["SPY"]["trades"][0]["side"] == "long"
    chart = result["chart"]
    assert chart["symbol"] == "SPY" and chart["candles"]
    assert set(chart["indicators"]) == {"SMA 3", "SMA 20"}
    assert {m["kind"] for m in chart["markers"]} == {"entry", "exit"}
    assert chart["curve"][0]["drawdown"] >= 0 and chart["curve"][-1]["equity"] > 0
    config.refresh_from_db()
    assert config.params == {"fast": 5, "slow": 20}  # overrides are not saved
    listed = reader.get("/api/v1/research/runs").json()
    assert listed["results"][0]["id"] == body["id"] and "result" not in listed["results"][0]


def test_optimize_rows_equal_single_backtests_of_each_combination(trader, config, market):
    response = _submit(
        trader,
        config,
        {
            "days": 20,
            "symbols": ["SPY", "QQQ"],
            "grid": {"fast": [2, 4, 6], "slow": {"start": 10, "stop": 20, "step": 5}},
            "constraints": ["fast < slow"],
            "fee_bps": 1,
            "slippage_bps": 2,
            "objective": "total_return",
        },
        path="optimize",
    )
    assert response.status_code == 202, response.json()
    run = run_execute(run_id=response.json()["id"])
    assert run.status == RunStatus.DONE, run.error
    result = run.result
    assert result["combinations"] == 9
    for row in result["rows"]:
        single = strategy_backtest(
            plugin="sma_crossover",
            symbols=["SPY", "QQQ"],
            days=20,
            params=row["params"],
            allocation=config.allocation,
            fee_bps=1,
            slippage_bps=2,
            end=run.created_at,
        )
        assert row["trades"] == single["metrics"]["trades"]
        assert round(row["final_equity"], 2) == round(single["metrics"]["final_equity"], 2)
    best = result["ranking"][0]
    assert best["total_return"] == max(r["total_return"] for r in result["rows"])
    assert result["best"]["params"] == {
        "fast": best["params"]["fast"],
        "slow": best["params"]["slow"],
    }
    heat = result["heatmap"]
    assert heat["x"] == "fast" and heat["y"] == "slow" and len(heat["values"]) == 3
    assert all(len(row) == 3 for row in heat["values"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grid": {"fast": {"start": 9, "stop": 1, "step": 1}}}, "grid.fast"),
        ({"grid": {"fast": {"start": 1, "stop": 9, "step": -1}}}, "grid.fast"),
        ({"grid": {"fats": [1, 2]}}, "grid.fats"),
        ({"grid": {"fast": [1, 2]}, "constraints": ["fast < slower"]}, "constraints[0]"),
        ({"grid": {"fast": [30, 40]}, "constraints": ["fast < slow"]}, "constraints"),
        ({"grid": {"fast": [1, 2]}, "objective": "luck"}, "objective"),
        ({"grid": {"fast": [1, 2]}, "min_trades": -1}, "min_trades"),
        (
            {"grid": {"fast": [1, 2]}, "walk_forward": {"train_days": 0, "test_days": 5}},
            "walk_forward.train_days",
        ),
        ({"grid": {"fast": [1, 2]}, "fee_bps": -1}, "fee_bps"),
        (
            {"grid": {"fast": list(range(1, 20))}, "days": 20, "params": {"slow": "x"}},
            "params.slow",
        ),
    ],
)
def test_bad_optimisations_are_400_naming_the_parameter(trader, config, body, field):
    response = _submit(trader, config, {"days": 20, **body}, path="optimize")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["details"]["field"] == field
    assert not ResearchRun.objects.exists()


def test_a_failing_strategy_is_recorded_as_failed(reader, market, fixed_target, make_config):
    config = make_config(plugin="fixed_target", params={"explode": True})
    run_id = _submit(reader, config, {"days": 10}).json()["id"]
    run = run_execute(run_id=run_id)
    assert run.status == RunStatus.FAILED and "boom" in run.error
    assert reader.get(f"/api/v1/research/runs/{run_id}").json()["error"] == run.error


def test_cancel_a_queued_run_and_stop_a_running_one(
    reader, trader, config, market, settings, monkeypatch
):
    from strategies.research.services import progress

    monkeypatch.setattr(progress, "CANCEL_POLL_SECONDS", 0.0)
    settings.RESEARCH_MAX_ACTIVE_READ = 5
    queued = _submit(reader, config, {"days": 10}).json()
    response = reader.post(f"/api/v1/research/runs/{queued['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    assert run_execute(run_id=queued["id"]).status == RunStatus.CANCELED  # the worker skips it
    assert reader.post(f"/api/v1/research/runs/{queued['id']}/cancel").status_code == 409

    body = {"days": 20, "grid": {"fast": list(range(1, 19)), "slow": [20, 25, 30]}}
    running = _submit(trader, config, body, path="optimize").json()
    # Someone else's read key may not cancel it; the owner (or a trade key) may.
    assert reader.post(f"/api/v1/research/runs/{running['id']}/cancel").status_code == 403
    seen = []

    def on_progress(fraction, message):
        seen.append(fraction)
        if (
            "combinations" in message
            and not ResearchRun.objects.get(pk=running["id"]).cancel_requested
        ):
            run_cancel(run=ResearchRun.objects.get(pk=running["id"]), principal=Principal())

    settings.RESEARCH_PROCESSES = 1
    run = run_execute(run_id=running["id"], on_progress=on_progress)
    assert run.status == RunStatus.CANCELED and run.result is None, run.error
    assert max(seen) < 0.9  # stopped inside the grid, long before the end


def test_progress_events_reach_the_stream(reader, config, market, settings):
    settings.RESEARCH_MAX_ACTIVE_READ = 5
    subscriber = redis_lib.Redis.from_url(settings.REDIS_URL).pubsub()
    subscriber.subscribe(stream_channel())
    subscriber.get_message(timeout=1)  # the subscribe confirmation
    run_id = _submit(reader, config, {"days": 10}).json()["id"]
    run_execute(run_id=run_id)
    events = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = subscriber.get_message(timeout=0.2)
        if message and message["type"] == "message":
            envelopes = [json.loads(text) for _t, _s, text in wire_split(message["data"])]
            for envelope in envelopes:
                if envelope["type"] == "research_progress" and envelope["payload"]["id"] == run_id:
                    events.append(envelope["payload"])
            if events and events[-1]["status"] == "done":
                break
    subscriber.close()
    statuses = [e["status"] for e in events]
    assert statuses[0] == "running" and statuses[-1] == "done"
    assert events[-1]["progress"] == 1.0


def test_a_read_key_cannot_start_more_than_its_share(reader, trader, config, market, settings):
    settings.RESEARCH_MAX_ACTIVE_READ = 1
    settings.RESEARCH_MAX_ACTIVE_TRADE = 2
    first = _submit(reader, config, {"days": 10})
    assert first.status_code == 202
    refused = _submit(reader, config, {"days": 10})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "research_busy"
    assert ResearchRun.objects.count() == 1
    # A trade key has its own, larger share.
    assert _submit(trader, config, {"days": 10}).status_code == 202
    assert _submit(trader, config, {"days": 10}).status_code == 202
    assert _submit(trader, config, {"days": 10}).status_code == 429
    # When the read key's run ends, it may start another.
    run_execute(run_id=first.json()["id"])
    assert _submit(reader, config, {"days": 10}).status_code == 202
    # The global limit holds for everyone.
    settings.RESEARCH_MAX_ACTIVE_TRADE = 10
    settings.RESEARCH_MAX_ACTIVE = ResearchRun.objects.filter(status="queued").count()
    assert _submit(trader, config, {"days": 10}).json()["error"]["details"]["scope"] == "global"


def test_no_request_computes_a_ten_year_ten_symbol_backtest(reader, trader, config, market):
    """The request that used to cost a minute of CPU now only validates and queues."""
    symbols = ["SPY", "QQQ", "TSLA", "NVDA", "AAPL", "MSFT", "AMZN", "META", "GOOG", "IWM"]
    started = time.process_time()
    response = _submit(reader, config, {"days": 3650, "symbols": symbols})
    assert response.status_code == 202
    body = {
        "days": 3650,
        "symbols": symbols,
        "grid": {"fast": list(range(1, 60)), "slow": list(range(60, 140))},
    }
    assert _submit(trader, config, body, path="optimize").status_code == 202
    assert time.process_time() - started < 2.0


def test_manage_optimize_shows_progress_and_the_ranking(market):
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    call_command(
        "optimize",
        "sma_crossover",
        "--symbols=SPY",
        "--days=10",
        "--grid=fast=2:8:2",
        "--grid=slow=10,20",
        "--constraint=fast < slow",
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert "8 combinations" in text and '   1  {"fast":' in text
    assert "optimize #" in err.getvalue() and "100%" in err.getvalue()  # tqdm's bar
    run = ResearchRun.objects.get()
    assert run.status == "done" and run.requested_by == "command"

    out = StringIO()
    call_command(
        "optimize",
        "sma_crossover",
        "--symbols=SPY",
        "--days=30",
        "--grid=fast=2,4",
        "--grid=slow=10,20",
        "--walk-forward=14:5",
        stdout=out,
        stderr=StringIO(),
    )
    assert "out-of-sample" in out.getvalue() and "in-sample mean" in out.getvalue()


def test_walk_forward_run_reports_in_and_out_of_sample(trader, config, market):
    response = _submit(
        trader,
        config,
        {
            "days": 30,
            "grid": {"fast": [2, 4, 8], "slow": [12, 24]},
            "walk_forward": {"train_days": 14, "test_days": 5},
        },
        path="optimize",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["kind"] == "walk_forward"
    run = run_execute(run_id=response.json()["id"])
    assert run.status == RunStatus.DONE, run.error
    result = run.result
    folds = result["folds"]
    assert len(folds) >= 2
    for a, b in zip(folds, folds[1:], strict=False):
        assert a["test_start"] == a["train_end"] and b["train_end"] == a["test_end"]
    chosen = [f for f in folds if f["best_params"]]
    assert chosen and all(set(f["best_params"]) == {"fast", "slow"} for f in chosen)
    assert result["in_sample_mean"] is not None and result["oos_metrics"]["bars"] > 0
    first_test = datetime.fromisoformat(folds[0]["test_start"]).timestamp()
    assert result["oos_equity"][0]["time"] >= first_test


def test_runs_a_stopped_worker_was_running_are_failed_when_it_starts_again(reader, config):
    from types import SimpleNamespace

    from strategies.research.tasks import fail_interrupted_runs

    ours = run_submit_running(reader, config, "research@a")
    theirs = run_submit_running(reader, config, "research@b")
    fail_interrupted_runs(sender=SimpleNamespace(hostname="research@a"))
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.status == "failed" and "interrupted" in ours.error
    assert theirs.status == "running"


def run_submit_running(client, config, worker):
    run = ResearchRun.objects.create(
        kind="backtest", plugin="sma_crossover", requested_by="test", inputs={}, config=config
    )
    ResearchRun.objects.filter(pk=run.pk).update(status="running", worker=worker)
    return run


def test_a_window_can_end_at_a_given_date(reader, config, market, settings):
    from strategies.selectors import bars_for_backtest

    settings.RESEARCH_MAX_ACTIVE_READ = 5
    bad = _submit(reader, config, {"days": 10, "end": "next tuesday"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "end"
    response = _submit(reader, config, {"days": 10, "end": "2025-03-01"})
    assert response.status_code == 202
    assert response.json()["inputs"]["end"] == "2025-03-01T00:00:00+00:00"
    run = run_execute(run_id=response.json()["id"])
    assert run.status == "done", run.error
    assert run.result["end"].startswith("2025-03-01T00:00:00")
    assert run.result["per_symbol"]["SPY"]["last_bar"] < "2025-03-01"
    frame, _ = bars_for_backtest(
        "SPY",
        "5Min",
        datetime.fromisoformat("2025-02-19T00:00:00+00:00"),
        datetime.fromisoformat("2025-03-01T00:00:00+00:00"),
    )
    assert run.result["per_symbol"]["SPY"]["bars"] == len(frame)


def test_indicator_lines_for_the_live_charts(reader, config, market):
    from marketdata.selectors import bars_recent

    body = reader.get(f"/api/v1/strategies/{config.pk}/indicators?symbol=spy&limit=50").json()
    assert body["symbol"] == "SPY" and set(body["lines"]) == {"SMA 5", "SMA 20"}
    closes = bars_recent("SPY", 5)["close"]
    last = body["lines"]["SMA 5"][-1]
    assert last["value"] == pytest.approx(closes.mean(), abs=1e-4)
    assert last["time"] == int(closes.index[-1].timestamp())
    assert len(body["lines"]["SMA 20"]) == 50  # warmed up on older bars
    for query, field in (("symbol=QQQ", "symbol"), ("symbol=SPY&limit=0", "limit")):
        response = reader.get(f"/api/v1/strategies/{config.pk}/indicators?{query}")
        assert response.status_code == 400
        assert field in json.dumps(response.json()["error"])


def test_admin_lists_runs_and_cancels_them(reader, config, market, admin_client):
    run_id = _submit(reader, config, {"days": 10}).json()["id"]
    page = admin_client.get("/admin/research/researchrun/").content.decode()
    assert f"/research/runs/{run_id}/" in page and "queued" in page
    response = admin_client.post(
        "/admin/research/researchrun/", {"action": "cancel", "_selected_action": [run_id]}
    )
    assert response.status_code == 302
    assert ResearchRun.objects.get(pk=run_id).status == "canceled"
