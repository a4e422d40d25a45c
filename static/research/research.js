/* Research pages: the form and live run list, and one run's result (charts, heatmap, tables).
   Reads and writes through /api/v1 with the session cookie, like the dashboard. */
"use strict";

const Research = (() => {
  const api = "/api/v1/";
  const $ = (sel) => document.querySelector(sel);
  const fmt = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  const pct = (v) => (v === null || v === undefined ? "–" : (Number(v) * 100).toFixed(2) + "%");
  const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) : "–");

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function request(method, path, body) {
    const response = await fetch(api + path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || method + " " + path + ": " + response.status);
      error.field = data.error && data.error.details && data.error.details.field;
      throw error;
    }
    return data;
  }

  function cell(tr, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }

  // Research progress events arrive on the dashboard's stream (/ws/updates, session cookie).
  function listen(onEvent, onState) {
    let retry = 0;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + "/ws/updates");
      socket.onopen = () => {
        retry = 0;
        onState("live");
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "research_progress") onEvent(message.payload);
      };
      socket.onclose = () => {
        onState("reconnecting");
        retry += 1;
        setTimeout(connect, Math.min(15000, 500 * 2 ** Math.min(retry, 5)));
      };
    }
    connect();
  }

  // --- the research page ------------------------------------------------------------------------

  function parseValue(text, type) {
    if (type === "boolean") return text === "true";
    if (type === "integer" || type === "number") return Number(text);
    return text;
  }

  function renderParams(plugin) {
    const box = $("#params");
    box.innerHTML = "";
    Object.entries(plugin.params).forEach(([name, schema]) => {
      const label = document.createElement("label");
      label.textContent = name + " ";
      const input = document.createElement("input");
      input.name = "param:" + name;
      input.dataset.type = schema.type;
      input.value = String(plugin.defaults[name]);
      input.title = schema.description || "";
      label.appendChild(input);
      box.appendChild(label);
    });
  }

  function buildBody(form) {
    const data = new FormData(form);
    const body = {
      plugin: data.get("plugin"),
      symbols: String(data.get("symbols")).split(",").map((s) => s.trim()).filter(Boolean),
      days: Number(data.get("days")),
      initial_cash: Number(data.get("initial_cash")),
      fee_bps: Number(data.get("fee_bps")),
      slippage_bps: Number(data.get("slippage_bps")),
      fee_per_trade: Number(data.get("fee_per_trade")),
      params: {},
    };
    if (data.get("end")) body.end = data.get("end");
    const grid = {};
    form.querySelectorAll("input[name^='param:']").forEach((input) => {
      const name = input.name.slice(6);
      const text = input.value.trim();
      const type = input.dataset.type;
      if (text.includes(":")) {
        const [start, stop, step] = text.split(":").map(Number);
        grid[name] = { start, stop, step };
      } else if (text.includes(",")) {
        grid[name] = text.split(",").map((v) => parseValue(v.trim(), type));
      } else if (text !== "") {
        body.params[name] = parseValue(text, type);
      }
    });
    if (Object.keys(grid).length) {
      body.kind = "optimize";
      body.grid = grid;
      body.objective = data.get("objective");
      body.min_trades = Number(data.get("min_trades"));
      const constraints = String(data.get("constraints") || "").split(/[;\n]/).map((s) => s.trim()).filter(Boolean);
      if (constraints.length) body.constraints = constraints;
      if (data.get("walk_forward")) {
        body.walk_forward = {
          train_days: Number(data.get("train_days")),
          test_days: Number(data.get("test_days")),
          anchored: Boolean(data.get("anchored")),
        };
      }
    } else {
      body.kind = "backtest";
    }
    return body;
  }

  function runRow(run) {
    let tr = document.querySelector(`#runs tr[data-id="${run.id}"]`);
    const isNew = !tr;
    if (isNew) {
      tr = document.createElement("tr");
      tr.dataset.id = run.id;
      const link = document.createElement("a");
      link.href = "/research/runs/" + run.id + "/";
      link.textContent = "#" + run.id;
      cell(tr, "").appendChild(link);
      for (let i = 0; i < 7; i++) cell(tr, "");
      const bar = document.createElement("progress");
      bar.max = 1;
      tr.cells[5].appendChild(bar);
      const body = $("#runs tbody");
      body.insertBefore(tr, body.firstChild);
    }
    if (run.kind) tr.cells[1].textContent = run.kind.replace("_", "-");
    if (run.plugin) tr.cells[2].textContent = run.plugin;
    if (run.inputs) tr.cells[3].textContent = run.inputs.symbols.join(", ");
    tr.cells[4].textContent = run.status;
    tr.cells[4].className = "status-" + run.status;
    tr.cells[5].firstChild.value = run.progress;
    tr.cells[5].title = Math.round(run.progress * 100) + "% " + (run.message || "");
    if (run.requested_by) tr.cells[6].textContent = run.requested_by;
    if (run.created_at) tr.cells[7].textContent = when(run.created_at);
    return isNew;
  }

  async function loadRuns() {
    const page = await request("GET", "research/runs?limit=50");
    page.results.slice().reverse().forEach(runRow);
  }

  function index() {
    const plugins = JSON.parse($("#plugins-data").textContent);
    const select = $("#plugin");
    const show = () => renderParams(plugins.find((p) => p.name === select.value));
    select.addEventListener("change", show);
    show();
    $("#research-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = $("#form-message");
      message.className = "";
      message.textContent = "submitting…";
      try {
        const run = await request("POST", "research/runs", buildBody(event.target));
        message.textContent = "run #" + run.id + " queued";
        runRow(run);
      } catch (error) {
        message.className = "down";
        message.textContent = error.message;
      }
    });
    loadRuns().catch(console.error);
    listen(
      (payload) => {
        if (runRow(payload)) loadRuns().catch(console.error); // a run we did not know: full row
      },
      (state) => {
        const pill = $("#connection");
        pill.textContent = state;
        pill.className = "pill " + (state === "live" ? "on" : "off");
        if (state === "live") loadRuns().catch(console.error);
      },
    );
  }

  // --- one run's page --------------------------------------------------------------------------

  function chart(el, height) {
    return LightweightCharts.createChart(el, {
      height,
      layout: { background: { color: "#1a2029" }, textColor: "#c8ccd2" },
      grid: { vertLines: { color: "#232a35" }, horzLines: { color: "#232a35" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      autoSize: true,
    });
  }

  const METRICS = [
    ["total_return", "Total return", pct],
    ["cagr", "CAGR", pct],
    ["sharpe", "Sharpe", fmt],
    ["sortino", "Sortino", fmt],
    ["calmar", "Calmar", fmt],
    ["max_drawdown", "Max drawdown", pct],
    ["volatility", "Volatility", pct],
    ["trades", "Trades", (v) => (v === null || v === undefined ? "–" : String(v))],
    ["win_rate", "Win rate", pct],
    ["profit_factor", "Profit factor", fmt],
    ["exposure", "Exposure", pct],
    ["final_equity", "Final equity", (v) => fmt(v, 2)],
  ];

  function showMetrics(metrics, title) {
    $("#metrics-title").textContent = title;
    const body = $("#metrics tbody");
    body.innerHTML = "";
    METRICS.forEach(([key, label, f]) => {
      const tr = document.createElement("tr");
      tr.dataset.metric = key;
      cell(tr, label);
      cell(tr, f(metrics[key]));
      body.appendChild(tr);
    });
  }

  function showCurves(curve) {
    if (!curve || !curve.length || typeof LightweightCharts === "undefined") return;
    const eq = chart($("#equity-chart"), 180);
    eq.addLineSeries({ color: "#6cb6ff", lineWidth: 2 }).setData(curve.map((p) => ({ time: p.time, value: p.equity })));
    eq.timeScale().fitContent();
    const dd = chart($("#drawdown-chart"), 140);
    dd.addAreaSeries({ lineColor: "#f47067", topColor: "rgba(244,112,103,0.05)", bottomColor: "rgba(244,112,103,0.4)" })
      .setData(curve.map((p) => ({ time: p.time, value: -100 * p.drawdown })));
    dd.timeScale().fitContent();
  }

  const LINE_COLORS = ["#f2cc60", "#b083f0", "#56d4dd", "#f69d50"];

  function showPrice(c) {
    if (!c || !c.candles.length || typeof LightweightCharts === "undefined") return;
    $("#price-card").hidden = false;
    $("#price-title").textContent = c.symbol + ": last " + c.candles.length + " bars, trades and indicators";
    const price = chart($("#price-chart"), 360);
    const candles = price.addCandlestickSeries();
    candles.setData(c.candles);
    Object.entries(c.indicators).forEach(([label, points], i) => {
      price.addLineSeries({ color: LINE_COLORS[i % LINE_COLORS.length], lineWidth: 1, title: label }).setData(points);
    });
    candles.setMarkers(
      c.markers.map((m) => ({
        time: m.time,
        position: m.kind === "entry" ? "belowBar" : "aboveBar",
        color: m.kind === "entry" ? "#57ab5a" : "#f47067",
        shape: m.kind === "entry" ? "arrowUp" : "arrowDown",
        // Labels only while they stay readable.
        text: c.markers.length <= 40 ? (m.kind === "entry" ? "buy " : "sell ") + m.price : "",
      })),
    );
    price.timeScale().fitContent();
    const legend = $("#price-legend");
    legend.dataset.markers = String(c.markers.length);
    legend.textContent =
      c.markers.length + " entry/exit markers; lines: " + (Object.keys(c.indicators).join(", ") || "none");
  }

  function showHeatmap(h) {
    if (!h) return;
    $("#heatmap-card").hidden = false;
    $("#heatmap-title").textContent = "Heatmap: " + h.objective + " over " + h.x + (h.y ? " × " + h.y : "");
    const values = h.values.flat().filter((v) => v !== null);
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const table = document.createElement("table");
    table.className = "heatmap";
    const head = document.createElement("tr");
    cell(head, h.y ? h.y + " \\ " + h.x : h.x);
    h.xs.forEach((x) => cell(head, String(x)));
    table.appendChild(head);
    h.ys.forEach((y, j) => {
      const tr = document.createElement("tr");
      cell(tr, y === null ? "" : String(y));
      h.values[j].forEach((v, i) => {
        const td = cell(tr, v === null ? "" : fmt(v, 2));
        td.title = `${h.x}=${h.xs[i]}${h.y ? `, ${h.y}=${y}` : ""}: ${v === null ? "excluded" : v}`;
        if (v !== null) {
          const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
          const good = h.objective === "max_drawdown" ? 1 - t : t;
          td.style.background = `hsl(${Math.round(good * 120)}, 55%, 32%)`;
          td.dataset.value = String(v);
        } else {
          td.className = "muted";
        }
      });
      table.appendChild(tr);
    });
    $("#heatmap").innerHTML = "";
    $("#heatmap").appendChild(table);
  }

  function showRanking(ranking) {
    if (!ranking || !ranking.length) return;
    $("#ranking-card").hidden = false;
    const body = $("#ranking tbody");
    body.innerHTML = "";
    ranking.forEach((r) => {
      const tr = document.createElement("tr");
      [r.rank, JSON.stringify(r.params), fmt(r.sharpe), fmt(r.sortino), fmt(r.calmar), pct(r.total_return),
        pct(r.max_drawdown), fmt(r.profit_factor), r.trades].forEach((v) => cell(tr, String(v)));
      body.appendChild(tr);
    });
  }

  function showWalkForward(result) {
    $("#walk-forward-card").hidden = false;
    $("#walk-forward-summary").textContent =
      `${result.objective}: in-sample mean ${fmt(result.in_sample_mean)}, out-of-sample mean ` +
      `${fmt(result.out_of_sample_mean)} (a large gap means the choice is overfitted)`;
    const body = $("#walk-forward tbody");
    body.innerHTML = "";
    result.folds.forEach((f) => {
      const tr = document.createElement("tr");
      [f.fold, when(f.train_start) + " → " + when(f.train_end), when(f.test_start) + " → " + when(f.test_end),
        f.best_params ? JSON.stringify(f.best_params) : "none eligible", fmt(f.train_objective),
        fmt(f.test_objective), pct(f.test_return), f.test_trades ?? "–"].forEach((v) => cell(tr, String(v)));
      body.appendChild(tr);
    });
  }

  function showTrades(result) {
    const rows = [];
    Object.entries(result.per_symbol || {}).forEach(([symbol, s]) => s.trades.forEach((t) => rows.push([symbol, t])));
    if (!rows.length) return;
    $("#trades-card").hidden = false;
    rows.sort((a, b) => (a[1].entry_time < b[1].entry_time ? 1 : -1));
    const body = $("#trades tbody");
    rows.slice(0, 50).forEach(([symbol, t]) => {
      const tr = document.createElement("tr");
      [symbol, t.side, when(t.entry_time), t.is_open ? "open" : when(t.exit_time), fmt(t.entry_price, 2),
        fmt(t.exit_price, 2), fmt(t.pnl, 2)].forEach((v) => cell(tr, String(v)));
      tr.cells[6].className = t.pnl >= 0 ? "up" : "down";
      body.appendChild(tr);
    });
  }

  function showResult(run) {
    $("#result").hidden = false;
    const r = run.result;
    if (run.kind === "backtest") {
      showMetrics(r.metrics, "Metrics");
      showCurves(r.chart.curve);
      showPrice(r.chart);
      showTrades(r);
    } else if (run.kind === "optimize") {
      if (r.best) {
        showMetrics(r.best.metrics, "Best: " + JSON.stringify(r.best.params));
        showCurves(r.best.chart.curve);
        showPrice(r.best.chart);
        showTrades(r.best);
      }
      showHeatmap(r.heatmap);
      showRanking(r.ranking);
    } else {
      showMetrics(r.oos_metrics || {}, "Out-of-sample (stitched test windows)");
      showCurves(r.oos_equity);
      showWalkForward(r);
    }
  }

  function showState(run) {
    $("#run-status").textContent = run.status;
    $("#run-status").className = "pill status-" + run.status;
    $("#run-progress").value = run.progress;
    $("#run-message").textContent = run.message || "";
    $("#cancel-run").hidden = !(run.status === "queued" || run.status === "running");
    if (run.error) {
      $("#run-error").hidden = false;
      $("#run-error").textContent = run.error;
    }
  }

  async function run(id) {
    let shown = false;
    const refresh = async () => {
      const data = await request("GET", "research/runs/" + id);
      showState(data);
      if (data.status === "done" && !shown) {
        shown = true;
        showResult(data);
      }
    };
    $("#cancel-run").addEventListener("click", async () => {
      try {
        showState(await request("POST", "research/runs/" + id + "/cancel"));
      } catch (error) {
        $("#run-message").textContent = error.message;
      }
    });
    await refresh();
    listen(
      (payload) => {
        if (payload.id !== id) return;
        showState(payload);
        if (payload.status === "done" || payload.status === "failed") refresh().catch(console.error);
      },
      (state) => {
        if (state === "live") refresh().catch(console.error);
      },
    );
  }

  return { index, run };
})();
