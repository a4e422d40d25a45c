// The dashboard: fetch a REST snapshot, then apply /ws/updates events on top (DESIGN.md §8).
// After a reconnect, a sequence gap or a silent stall, fetch the snapshot again so nothing is
// missed. Sequence numbers are per stream: market_data per symbol, everything else "events".
(function () {
  "use strict";
  const api = "/api/v1/";
  const MAX_TRADES = 50;
  const OPEN_ORDER = new Set(["pending_submit", "held", "new", "accepted", "partially_filled"]);
  const PING_EVERY_MS = 15000;
  const STALE_AFTER_MS = 40000; // the server sends a snapshot every 5 s and answers pings
  const symbols = JSON.parse(document.getElementById("symbols-data").textContent);
  const Charts = window.LightweightCharts;

  let socket = null;
  let retry = 0;
  let lastSeq = {};
  let helloSeen = false;
  let lastMessageAt = Date.now();
  let loading = null; // the snapshot load in progress; events received meanwhile wait in `pending`
  let pending = [];
  const charts = {}; // symbol -> {chart, series, lastTime}
  let equity = null;

  const $ = (sel) => document.querySelector(sel);
  const fmt = (v, d = 2) => (v === null || v === undefined || v === "" ? "–" : Number(v).toFixed(d));
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) : "–");
  const unix = (iso) => Math.floor(new Date(iso).getTime() / 1000);

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function getJSON(path) {
    const response = await fetch(api + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error(path + ": " + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  async function postJSON(path, body) {
    const response = await fetch(api + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || path + ": " + response.status);
    return data;
  }

  // --- connection indicator ---------------------------------------------------------------------

  function setConnection(state, label) {
    const el = $("#connection");
    el.dataset.state = state;
    el.textContent = label || state;
    el.className = "pill " + (state === "live" ? "on" : state === "degraded" ? "degraded" : "off");
    $("#stream-banner").hidden = state === "live" || state === "connecting";
  }

  // --- charts -------------------------------------------------------------------------------------

  function makeChart(el, height) {
    return Charts.createChart(el, {
      height: height,
      layout: { background: { color: "#1a2029" }, textColor: "#c8ccd2" },
      grid: { vertLines: { color: "#232a35" }, horzLines: { color: "#232a35" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      autoSize: true,
    });
  }

  function setupCharts() {
    if (!Charts) {
      console.warn("lightweight-charts is not installed (run the setup step): no charts");
      return;
    }
    document.querySelectorAll(".chart[data-symbol]").forEach((el) => {
      const chart = makeChart(el, 260);
      charts[el.dataset.symbol] = { chart, series: chart.addCandlestickSeries(), lastTime: 0, count: 0 };
    });
    const chart = makeChart($("#equity-chart"), 160);
    equity = { chart, series: chart.addLineSeries({ color: "#6cb6ff", lineWidth: 2 }), lastTime: 0 };
  }

  function candle(bar) {
    return { time: unix(bar.timestamp), open: Number(bar.open), high: Number(bar.high), low: Number(bar.low), close: Number(bar.close) };
  }

  function setBars(symbol, bars) {
    const c = charts[symbol];
    if (!c) return;
    const data = bars.map(candle);
    c.series.setData(data);
    c.lastTime = data.length ? data[data.length - 1].time : 0;
    c.count = data.length;
    document.querySelector('[data-bars-for="' + symbol + '"]').textContent = data.length + " bars";
    if (data.length) showPrice(symbol, data[data.length - 1].close);
  }

  function showPrice(symbol, price) {
    const el = document.querySelector('[data-price-for="' + symbol + '"]');
    if (!el) return;
    const before = Number(el.dataset.value);
    const now = Number(price);
    el.textContent = fmt(now);
    el.dataset.value = String(now);
    if (before && now !== before) el.className = "price " + (now > before ? "tick-up" : "tick-down");
  }

  // The live price (market_data of kind "quote", at most a few per second per symbol).
  function applyQuote(q) {
    showPrice(q.symbol, q.price);
    const held = positions[q.symbol];
    if (held) {
      // The position at the live price (the server marks it to market at each bar).
      const unrealized = (Number(q.price) - Number(held.avg_entry_price)) * Number(held.qty);
      applyPosition({ ...held, last_price: q.price, unrealized_pnl: unrealized });
    }
    const el = document.querySelector('[data-price-for="' + q.symbol + '"]');
    if (el) el.dataset.ticks = String(Number(el.dataset.ticks || 0) + 1);
    const detail = document.querySelector('[data-quote-for="' + q.symbol + '"]');
    if (!detail) return;
    const sides = q.bid !== null && q.ask !== null ? fmt(q.bid) + " × " + fmt(q.ask) + " · " : "";
    detail.textContent = sides + new Date(q.timestamp).toISOString().slice(11, 19);
  }

  // --- real-time streams (status.streams: {name: {state, last_message_age_s, reconnects}}) ---------
  // A stream with no holder ("down") leaves the REST fallback polling: shown as "polling".

  const STREAM_LABELS = { market_data: "market data", trade_updates: "trade updates" };
  const STREAM_PILL = { live: "on", reconnecting: "degraded", polling: "degraded", standby: "idle" };
  const STREAM_RANK = { live: 0, standby: 1, polling: 2, reconnecting: 3 };

  function applyStreams(streams) {
    const box = $("#streams");
    box.textContent = "";
    const names = Object.keys(streams || {}).sort();
    const rank = (state) => STREAM_RANK[state] ?? 4; // unknown or off ranks worst
    let worst = null;
    if (!names.length) names.push(null);
    names.forEach((name) => {
      const s = (name && streams[name]) || {};
      let state = name ? s.state || "off" : "off";
      if (state === "down") state = s.polling === false ? "off" : "polling";
      const pill = document.createElement("span");
      pill.className = "pill " + (STREAM_PILL[state] || "idle");
      pill.dataset.stream = name || "none";
      pill.dataset.state = state;
      pill.textContent = (name ? STREAM_LABELS[name] || name : "streams") + ": " + state;
      if (name) {
        const age = s.last_message_age_s ?? s.last_message_age_seconds;
        pill.title = "last message " + (age === null || age === undefined ? "never" : Number(age).toFixed(1) + " s ago") +
          " · " + (s.reconnects || 0) + " reconnects";
      }
      if (worst === null || rank(state) > rank(worst)) worst = state;
      box.appendChild(pill);
    });
    box.dataset.state = worst;
  }

  function applyBar(bar) {
    showPrice(bar.symbol, bar.close);
    const c = charts[bar.symbol];
    if (!c) return;
    const point = candle(bar);
    if (point.time < c.lastTime) return; // older than the chart's last bar: the snapshot has it
    c.series.update(point);
    if (point.time > c.lastTime) c.count += 1;
    c.lastTime = point.time;
    document.querySelector('[data-bars-for="' + bar.symbol + '"]').textContent = c.count + " bars";
  }

  async function loadBars(symbol) {
    const query = "?symbol=" + encodeURIComponent(symbol) + "&timeframe=5Min&days=5";
    const data = await getJSON("chart-data" + query);
    setBars(symbol, data.candles);
  }

  function setEquityCurve(points) {
    if (!equity) return;
    const byTime = new Map();
    points.forEach((p) => byTime.set(unix(p.timestamp), Number(p.equity)));
    const data = [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ time: t, value: v }));
    equity.series.setData(data);
    equity.lastTime = data.length ? data[data.length - 1].time : 0;
  }

  function addEquityPoint(iso, value) {
    if (!equity || value === undefined) return;
    const t = unix(iso);
    if (t < equity.lastTime) return;
    equity.series.update({ time: t, value: Number(value) });
    equity.lastTime = t;
  }

  // --- tables and panels -----------------------------------------------------------------------------

  function applyStatus(s) {
    if (!s || s.subscribed) return;
    if (s.stream === "down") setConnection("degraded", "stream down");
    if (s.streams !== undefined) applyStreams(s.streams);
    if (s.clock) $("#clock").textContent = s.clock;
    if (s.market_time) $("#market-time").textContent = time(s.market_time);
    if (s.market_open !== undefined) {
      $("#market-open").textContent = s.market_open ? "open" : "closed";
      $("#market-banner").hidden = !!s.market_open;
    }
    if (s.session !== undefined) $("#session-status").textContent = s.session ? s.session.status : "none";
    if (s.halted !== undefined) {
      $("#halted-banner").hidden = !s.halted;
      $("#halted-reason").textContent = (s.kill_switch && s.kill_switch.reason) || "";
      $("#stop-trading").hidden = !!s.halted;
      $("#resume-trading").hidden = !s.halted;
    }
  }

  function applyPerformance(p, ts) {
    if (p.equity !== undefined) $("#equity").textContent = fmt(p.equity);
    if (p.cash !== undefined) $("#cash").textContent = fmt(p.cash);
    if (p.realized_pnl !== undefined) $("#realized-pnl").textContent = fmt(p.realized_pnl);
    if (p.unrealized_pnl !== undefined) $("#unrealized-pnl").textContent = fmt(p.unrealized_pnl);
    if (p.trades !== undefined) $("#trade-count").textContent = p.trades;
    if (p.total_return !== undefined && p.total_return !== null)
      $("#total-return").textContent = (p.total_return * 100).toFixed(2) + "%";
    if (ts) addEquityPoint(ts, p.equity);
  }

  function row(table, key, value, cells) {
    let tr = document.querySelector("#" + table + ' tr[data-key="' + CSS.escape(String(value)) + '"]');
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = value;
      cells.forEach(() => tr.appendChild(document.createElement("td")));
      document.querySelector("#" + table + " tbody").appendChild(tr);
    }
    cells.forEach((text, i) => (tr.cells[i].textContent = text));
    return tr;
  }

  const positions = {}; // symbol -> its last position payload, to price it at each quote

  function applyPosition(p) {
    if (Number(p.qty) === 0) delete positions[p.symbol];
    else positions[p.symbol] = p;
    if (Number(p.qty) === 0) {
      const tr = document.querySelector('#positions tr[data-key="' + CSS.escape(p.symbol) + '"]');
      if (tr) tr.remove();
      return;
    }
    const tr = row("positions", "symbol", p.symbol, [p.symbol, fmt(p.qty, 0), fmt(p.avg_entry_price), fmt(p.last_price), fmt(p.unrealized_pnl)]);
    tr.cells[4].className = Number(p.unrealized_pnl) >= 0 ? "up" : "down";
  }

  function orderRow(id) {
    return document.querySelector('#orders tr[data-key="' + CSS.escape(id) + '"]');
  }

  // A protective order's legs show right under their parent (which stays listed, whatever its
  // status, while a leg is open); a trailing stop shows its high-water mark.
  function orderType(o) {
    if (o.parent_id) return "\u21b3 " + (o.leg_role || "leg").replace("_", "-") + " " + o.type;
    let text = o.type;
    if (o.order_class && o.order_class !== "simple") text += " (" + o.order_class + ")";
    if (o.type === "trailing_stop" && o.hwm) text += " hwm " + fmt(o.hwm) + " stop " + fmt(o.stop_price);
    return text;
  }

  function applyOrder(o) {
    const legs = o.legs || [];
    const legOpen = legs.some((l) => OPEN_ORDER.has(l.status));
    if (!OPEN_ORDER.has(o.status) && !legOpen) {
      const tr = orderRow(o.id);
      if (tr) tr.remove();
      legs.forEach(applyOrder);
      return;
    }
    const tr = row("orders", "id", o.id, [time(o.created_at), o.symbol, o.side, orderType(o), fmt(o.qty, 0), o.status]);
    if (o.parent_id) {
      tr.classList.add("leg");
      tr.dataset.parent = o.parent_id;
      let anchor = orderRow(o.parent_id);
      while (anchor && anchor.nextElementSibling && anchor.nextElementSibling !== tr && anchor.nextElementSibling.dataset.parent === o.parent_id) {
        anchor = anchor.nextElementSibling;
      }
      if (anchor && anchor !== tr) anchor.after(tr);
    }
    legs.forEach(applyOrder);
  }

  // Fills as markers on their symbol's chart, at the 5-minute bar they happened in.
  function markTrade(t) {
    const c = charts[t.symbol];
    if (!c || !t.executed_at) return;
    c.markers = c.markers || new Map();
    const at = unix(t.executed_at);
    const buy = t.side === "buy";
    c.markers.set(String(t.id), {
      time: at - (at % 300),
      position: buy ? "belowBar" : "aboveBar",
      color: buy ? "#57ab5a" : "#f47067",
      shape: buy ? "arrowUp" : "arrowDown",
      text: (buy ? "buy " : "sell ") + fmt(t.qty, 0),
    });
    c.series.setMarkers([...c.markers.values()].sort((a, b) => a.time - b.time));
    document.querySelector('.chart[data-symbol="' + t.symbol + '"]').dataset.markers = String(c.markers.size);
  }

  function applyTrade(t, prepend = true) {
    markTrade(t);
    if (document.querySelector('#trades tr[data-id="' + t.id + '"]')) return;
    const tr = document.createElement("tr");
    tr.dataset.id = t.id;
    tr.className = prepend ? "trade-row fresh" : "trade-row"; // a fill as it arrives: highlighted
    [time(t.executed_at), t.symbol, t.side, fmt(t.qty, 0), fmt(t.price), fmt(t.realized_pnl)].forEach((v) => {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    });
    const body = $("#trades tbody");
    if (prepend) body.insertBefore(tr, body.firstChild);
    else body.appendChild(tr);
    while (body.rows.length > MAX_TRADES) body.deleteRow(body.rows.length - 1);
  }

  // {"SPY": {"target": 1, "bar_time", "note": "ordered", ...}} -> "SPY long 100% · ordered"
  function signalText(signal) {
    if (!signal || typeof signal !== "object" || !Object.keys(signal).length) return "–";
    return Object.entries(signal)
      .map(([symbol, d]) => {
        const target = d && typeof d.target === "number" ? d.target : null;
        const side = target === null ? "no signal" : target > 0 ? "long" : target < 0 ? "short" : "flat";
        const size = target ? " " + Math.round(Math.abs(target) * 100) + "%" : "";
        return symbol + " " + side + size + (d && d.note ? " · " + d.note : "");
      })
      .join("; ");
  }

  // Each enabled strategy's indicator lines (its plugin's `plot`) over its symbols' candles.
  const LINE_COLORS = ["#f2cc60", "#b083f0", "#56d4dd", "#f69d50"];
  const indicatorSeries = {};
  let enabledConfigs = [];

  async function loadIndicators(config) {
    for (const symbol of config.symbols || []) {
      const c = charts[symbol];
      if (!c) continue;
      const query = "?symbol=" + encodeURIComponent(symbol) + "&limit=500";
      const data = await getJSON("strategies/" + config.id + "/indicators" + query);
      Object.entries(data.lines).forEach(([label, points], i) => {
        const key = config.id + ":" + symbol + ":" + label;
        if (!indicatorSeries[key]) {
          indicatorSeries[key] = c.chart.addLineSeries({
            color: LINE_COLORS[i % LINE_COLORS.length], lineWidth: 1, title: label,
            priceLineVisible: false, lastValueVisible: false,
          });
        }
        indicatorSeries[key].setData(points);
      });
      const count = Object.keys(indicatorSeries).filter((k) => k.split(":")[1] === symbol).length;
      document.querySelector('.chart[data-symbol="' + symbol + '"]').dataset.lines = String(count);
    }
  }
  setInterval(() => enabledConfigs.forEach((s) => loadIndicators(s).catch(console.error)), 60000);

  function applyStrategies(list) {
    enabledConfigs = list.filter((s) => s.enabled);
    enabledConfigs.forEach((s) => loadIndicators(s).catch(console.error));
    $("#strategies tbody").innerHTML = "";
    list.forEach((s) => {
      const state = s.last_error ? "error" : s.enabled ? "enabled" : "disabled";
      const signal = signalText(s.last_signal);
      const tr = row("strategies", "name", s.name, [s.name, (s.symbols || []).join(", "), state, time(s.last_run_at), signal]);
      tr.cells[2].className = state === "error" ? "down" : state === "enabled" ? "up" : "";
      if (s.last_error) tr.cells[2].title = s.last_error;
    });
  }

  // --- snapshot and events -------------------------------------------------------------------

  async function fetchSnapshot() {
    const [snap] = await Promise.all([getJSON("dashboard/snapshot"), ...symbols.map((s) => loadBars(s).catch(console.error))]);
    applyStatus(snap.status);
    applyPerformance(snap.performance);
    setEquityCurve(snap.equity_curve);
    applyStrategies(snap.strategies);
    $("#positions tbody").innerHTML = "";
    Object.keys(positions).forEach((symbol) => delete positions[symbol]);
    snap.positions.forEach(applyPosition);
    $("#orders tbody").innerHTML = "";
    snap.open_orders.forEach(applyOrder);
    $("#trades tbody").innerHTML = "";
    snap.trades.forEach((t) => applyTrade(t, false));
    (snap.quotes || []).forEach(applyQuote); // after the bars: the live price beats the last close
  }

  function resync() {
    if (loading) return loading;
    pending = [];
    loading = fetchSnapshot()
      .catch((error) => {
        console.error("snapshot failed", error);
        setTimeout(resync, 2000); // REST is down too: try again soon
      })
      .finally(() => {
        loading = null;
        const queued = pending;
        pending = [];
        queued.forEach(apply); // events that arrived while the snapshot was loading
      });
    return loading;
  }

  function streamOf(message) {
    return message.type === "market_data" ? "md:" + message.payload.symbol : "events";
  }

  function apply(message) {
    const p = message.payload;
    switch (message.type) {
      case "status": applyStatus(p); break;
      // kind "bar" (stored) and "bar_forming" (the candle under way, moving) update the chart;
      // "quote" the live price.
      case "market_data": if (p.kind === "quote") applyQuote(p); else applyBar(p); break;
      case "trade_update": applyTrade(p); break;
      case "order_update": applyOrder(p); break;
      case "position_update": applyPosition(p); break;
      case "performance_update": applyPerformance(p, message.ts); break;
      case "error": console.warn("stream error", p); break;
    }
  }

  function onMessage(event) {
    lastMessageAt = Date.now();
    const message = JSON.parse(event.data);
    if (!helloSeen) {
      // The first message after (re)connecting is the server's status snapshot: the server is
      // now subscribed for us, so a REST snapshot taken from here on misses nothing.
      helloSeen = true;
      lastSeq = {};
      setConnection(message.payload.stream === "down" ? "degraded" : "live", message.payload.stream === "down" ? "stream down" : "live");
      socket.send(JSON.stringify({ action: "subscribe", symbols: symbols }));
      resync();
    }
    if (message.seq > 0) {
      const stream = streamOf(message);
      const last = lastSeq[stream];
      lastSeq[stream] = message.seq;
      // A gap: we missed messages. Lower than before: Redis restarted and counts afresh.
      if (last !== undefined && message.seq !== last + 1) resync();
    }
    if (loading) pending.push(message);
    else apply(message);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    helloSeen = false;
    lastMessageAt = Date.now();
    setConnection(retry ? "reconnecting" : "connecting", retry ? "reconnecting…" : "connecting…");
    socket = new WebSocket(scheme + location.host + "/ws/updates");
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      if (event.code === 4401) setConnection("unauthorized", "signed out");
      else setConnection("reconnecting", "reconnecting…");
      // Exponential backoff with jitter, capped at 30 s, and no attempt limit.
      const delay = Math.min(30000, 500 * 2 ** Math.min(retry, 10)) * (0.75 + Math.random() / 2);
      retry += 1;
      setTimeout(connect, delay);
    };
    socket.onopen = () => {
      retry = 0;
    };
  }

  // A connection can die without a close event (sleeping laptop, dead proxy): ping, and treat
  // prolonged silence as a disconnect.
  setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastMessageAt > STALE_AFTER_MS) socket.close(4000, "stale");
    else socket.send(JSON.stringify({ action: "ping" }));
  }, PING_EVERY_MS);

  async function killSwitch(stop) {
    const question = stop
      ? "Stop all trading now? Open orders are canceled and no new orders are sent."
      : "Resume trading?";
    if (!window.confirm(question)) return;
    const message = $("#action-message");
    message.textContent = stop ? "stopping…" : "resuming…";
    try {
      if (stop) await postJSON("stop_trading", { reason: "dashboard kill switch", flatten: false });
      else await postJSON("resume_trading", {});
      message.textContent = stop ? "trading stopped" : "trading resumed";
      applyStatus(await getJSON("status"));
    } catch (error) {
      message.textContent = "failed: " + error.message;
    }
  }

  $("#stop-trading").addEventListener("click", () => killSwitch(true));
  $("#resume-trading").addEventListener("click", () => killSwitch(false));

  setupCharts();
  connect();
})();
