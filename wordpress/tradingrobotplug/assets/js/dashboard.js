/**
 * TradingRobotPlug dashboard: REST snapshot through this site's routes, then live events from the
 * backend's WebSocket (/ws/updates?token=...). After a reconnect or a `seq` gap the snapshot is
 * fetched again, so nothing is missed. All text goes through textContent (never innerHTML).
 */
(function () {
  "use strict";

  const config = window.TradingRobotPlugConfig;
  const root = document.getElementById("trp-dashboard");
  if (!config || !root) return;

  const MAX_TRADES = 50;
  const OPEN_ORDER = new Set(["pending_submit", "new", "accepted", "partially_filled"]);
  const Charts = window.LightweightCharts;

  const $ = (sel) => root.querySelector(sel);
  const fmt = (v, d = 2) => (v === null || v === undefined || v === "" ? "–" : Number(v).toFixed(d));
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) : "–");
  const unix = (iso) => Math.floor(new Date(iso).getTime() / 1000);

  async function api(path, options = {}) {
    const response = await fetch(config.restUrl + path, {
      method: options.method || "GET",
      credentials: "same-origin",
      headers: Object.assign(
        { Accept: "application/json", "X-WP-Nonce": config.nonce },
        options.body ? { "Content-Type": "application/json" } : {}
      ),
      body: options.body ? JSON.stringify(options.body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data && data.message) || path + ": HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /**
   * The stream client. Connects with ?token=, routes events by type, reconnects forever with
   * exponential backoff and jitter, resubscribes and asks for a REST re-fetch after every
   * (re)connect and every sequence gap, and refreshes its token through WordPress before the
   * token expires (so the next reconnect always has a valid one).
   */
  class TradingRobotPlugWebSocket {
    // new TradingRobotPlugWebSocket(url, token, options) as the original client was called, or
    // new TradingRobotPlugWebSocket(options) with options.fetchToken supplying {token, expires_at, url}.
    constructor(url, token, options) {
      if (typeof url === "object" && url !== null) {
        options = url;
        url = null;
        token = null;
      }
      options = options || {};
      this.url = url;
      this.fetchToken = options.fetchToken || null;
      this.symbols = options.symbols || [];
      this.handlers = options.handlers || {};
      this.ws = null;
      // A token given up front is used until it expires (its expiry unknown: one connect).
      this.token = token ? { token: token, url: url, expires_at: new Date(Date.now() + 60000).toISOString() } : null;
      this.reconnectAttempts = 0;
      this.lastSeq = {};
      this.helloSeen = false;
      this.closedByUs = false;
      this.refreshTimer = null;
      this.lastMessageAt = Date.now();
      this.pingTimer = setInterval(() => this.keepAlive(), 15000);
    }

    async refreshToken() {
      clearTimeout(this.refreshTimer);
      if (!this.fetchToken) throw new Error("no way to renew the WebSocket token");
      this.token = await this.fetchToken();
      const expires = Date.parse(this.token.expires_at);
      // Renew a minute before expiry (at least 5 s from now).
      const delay = Number.isFinite(expires) ? Math.max(5000, expires - Date.now() - 60000) : 60000;
      this.refreshTimer = setTimeout(() => this.refreshToken().catch(() => this.scheduleTokenRetry()), delay);
      return this.token;
    }

    scheduleTokenRetry() {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.refreshToken().catch(() => this.scheduleTokenRetry()), 5000);
    }

    tokenValid() {
      return this.token && Date.parse(this.token.expires_at) - Date.now() > 10000;
    }

    async connect() {
      this.closedByUs = false;
      this.helloSeen = false;
      this.emit("state", this.reconnectAttempts ? "reconnecting" : "connecting");
      try {
        if (!this.tokenValid()) await this.refreshToken();
      } catch (error) {
        this.emit("error", error);
        this.reconnect();
        return;
      }
      const url = this.token.url + "?token=" + encodeURIComponent(this.token.token);
      const ws = new WebSocket(url);
      this.ws = ws;
      ws.onopen = () => {
        this.reconnectAttempts = 0;
        this.lastMessageAt = Date.now();
      };
      ws.onmessage = (event) => {
        this.lastMessageAt = Date.now();
        let data;
        try {
          data = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        this.handleMessage(data);
      };
      ws.onerror = () => {}; // onclose follows and reconnects
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        if (event.code === 4401) this.token = null; // refused: fetch a fresh token next time
        this.emit("state", "reconnecting");
        if (!this.closedByUs) this.reconnect();
      };
    }

    reconnect() {
      // No attempt limit: exponential backoff capped at 30 s, with jitter.
      const delay = Math.min(30000, 500 * 2 ** Math.min(this.reconnectAttempts, 10)) * (0.75 + Math.random() / 2);
      this.reconnectAttempts += 1;
      setTimeout(() => this.connect(), delay);
    }

    keepAlive() {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this.lastMessageAt > 40000) this.ws.close(4000, "stale");
      else this.send({ action: "ping" });
    }

    streamOf(data) {
      return data.type === "market_data" && data.payload ? "md:" + data.payload.symbol : "events";
    }

    handleMessage(data) {
      if (!data || typeof data.type !== "string") return;
      if (!this.helloSeen) {
        // The first frame after connecting is the server's status: we are subscribed from here,
        // so a REST snapshot fetched now misses nothing.
        this.helloSeen = true;
        this.lastSeq = {};
        this.emit("state", data.payload && data.payload.stream === "down" ? "degraded" : "live");
        this.send({ action: "subscribe", symbols: this.symbols });
        this.emit("resync");
      }
      if (data.seq > 0) {
        const stream = this.streamOf(data);
        const last = this.lastSeq[stream];
        this.lastSeq[stream] = data.seq;
        if (last !== undefined && data.seq !== last + 1) this.emit("resync");
      }
      // Route events to their handlers (the backend's event types, streaming/events.py).
      switch (data.type) {
        case "market_data": this.onMarketData(data.payload); break;
        case "trade_update": this.onTradeUpdate(data.payload); break;
        case "order_update": this.onOrderUpdate(data.payload); break;
        case "position_update": this.onPositionUpdate(data.payload); break;
        case "performance_update": this.onPerformanceUpdate(data.payload); break;
        case "status": this.emit("status", data.payload); break;
        case "error": this.emit("error", data.payload); break;
      }
    }

    onMarketData(data) { this.emit("marketData", data); }
    onTradeUpdate(data) { this.emit("tradeUpdate", data); }
    onOrderUpdate(data) { this.emit("orderUpdate", data); }
    onPositionUpdate(data) { this.emit("positionUpdate", data); }
    onPerformanceUpdate(data) { this.emit("performanceUpdate", data); }

    emit(name, payload, message) {
      const handler = this.handlers[name];
      if (handler) handler(payload, message);
    }

    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
    }

    disconnect() {
      this.closedByUs = true;
      clearTimeout(this.refreshTimer);
      clearInterval(this.pingTimer);
      if (this.ws) this.ws.close();
    }
  }
  window.TradingRobotPlugWebSocket = TradingRobotPlugWebSocket;

  // --- page -------------------------------------------------------------------------------------

  const charts = {};

  function setConnection(state) {
    const el = $("#trp-connection");
    el.dataset.state = state;
    el.textContent = state === "live" ? "live" : state === "degraded" ? "stream down" : state + "…";
  }

  function showError(message) {
    const el = $("#trp-error-banner");
    el.textContent = message || "";
    el.hidden = !message;
  }

  function setupCharts() {
    if (!Charts) {
      showError("The chart library is missing from the plugin build.");
      return;
    }
    root.querySelectorAll(".trp-chart[data-symbol]").forEach((el) => {
      const chart = Charts.createChart(el, {
        height: 240,
        layout: { background: { color: "#ffffff" }, textColor: "#1d2327" },
        timeScale: { timeVisible: true, secondsVisible: false },
        autoSize: true,
      });
      charts[el.dataset.symbol] = { chart, series: chart.addCandlestickSeries(), lastTime: 0, count: 0 };
    });
  }

  function candle(bar) {
    return { time: unix(bar.timestamp), open: Number(bar.open), high: Number(bar.high), low: Number(bar.low), close: Number(bar.close) };
  }

  function showPrice(symbol, price) {
    const el = root.querySelector('[data-price-for="' + CSS.escape(symbol) + '"]');
    if (el) el.textContent = fmt(price);
  }

  function setBarCount(symbol, count) {
    const el = root.querySelector('[data-bars-for="' + CSS.escape(symbol) + '"]');
    if (el) el.textContent = count + " bars";
  }

  function setCandles(symbol, candles) {
    const c = charts[symbol];
    const data = candles.map((k) => ({ time: k.time, open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close) }));
    if (data.length) showPrice(symbol, data[data.length - 1].close);
    if (!c) return;
    c.series.setData(data);
    c.lastTime = data.length ? data[data.length - 1].time : 0;
    c.count = data.length;
    setBarCount(symbol, c.count);
  }

  function applyBar(bar) {
    if (!bar || !bar.symbol) return;
    showPrice(bar.symbol, bar.close);
    const c = charts[bar.symbol];
    if (!c) return;
    const point = candle(bar);
    if (point.time < c.lastTime) return;
    c.series.update(point);
    if (point.time > c.lastTime) c.count += 1;
    c.lastTime = point.time;
    setBarCount(bar.symbol, c.count);
  }

  function applyStatus(s) {
    if (!s || s.subscribed) return;
    if (s.halted !== undefined) {
      $("#trp-halted-banner").hidden = !s.halted;
      $("#trp-halted-reason").textContent = (s.kill_switch && s.kill_switch.reason) || s.reason || "";
      const stop = $("#trp-stop-trading");
      const resume = $("#trp-resume-trading");
      if (stop) stop.hidden = !!s.halted;
      if (resume) resume.hidden = !s.halted;
    }
  }

  function applyPerformance(p) {
    if (!p) return;
    if (p.equity !== undefined) $("#trp-equity").textContent = fmt(p.equity);
    if (p.cash !== undefined) $("#trp-cash").textContent = fmt(p.cash);
    if (p.realized_pnl !== undefined) $("#trp-realized").textContent = fmt(p.realized_pnl);
    if (p.unrealized_pnl !== undefined) $("#trp-unrealized").textContent = fmt(p.unrealized_pnl);
    if (p.trades !== undefined) $("#trp-trade-count").textContent = String(p.trades);
  }

  function row(table, key, cells) {
    let tr = root.querySelector("#" + table + ' tr[data-key="' + CSS.escape(String(key)) + '"]');
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = key;
      cells.forEach(() => tr.appendChild(document.createElement("td")));
      $("#" + table + " tbody").appendChild(tr);
    }
    cells.forEach((text, i) => (tr.cells[i].textContent = text));
    return tr;
  }

  function applyPosition(p) {
    if (!p || !p.symbol) return;
    if (Number(p.qty) === 0) {
      const tr = root.querySelector('#trp-positions tr[data-key="' + CSS.escape(p.symbol) + '"]');
      if (tr) tr.remove();
      return;
    }
    row("trp-positions", p.symbol, [p.symbol, fmt(p.qty, 0), fmt(p.avg_entry_price), fmt(p.last_price), fmt(p.unrealized_pnl)]);
  }

  function applyOrder(o) {
    if (!o || !o.id) return;
    const existing = root.querySelector('#trp-orders tr[data-key="' + CSS.escape(String(o.id)) + '"]');
    if (!OPEN_ORDER.has(o.status)) {
      if (existing) existing.remove();
      return;
    }
    const tr = row("trp-orders", o.id, [time(o.created_at), o.symbol, o.side, o.type, fmt(o.qty, 0), o.status, ""]);
    if (config.canTrade && !tr.cells[6].firstChild) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "trp-cancel";
      button.textContent = "Cancel";
      button.addEventListener("click", () => cancelOrder(o.id, button));
      tr.cells[6].appendChild(button);
    }
  }

  function applyTrade(t, prepend = true) {
    if (!t || !t.id || root.querySelector('#trp-trades tr[data-id="' + CSS.escape(String(t.id)) + '"]')) return;
    const tr = document.createElement("tr");
    tr.dataset.id = t.id;
    tr.className = "trp-trade-row";
    [time(t.executed_at), t.symbol, t.side, fmt(t.qty, 0), fmt(t.price), fmt(t.realized_pnl)].forEach((v) => {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    });
    const body = $("#trp-trades tbody");
    if (prepend) body.insertBefore(tr, body.firstChild);
    else body.appendChild(tr);
    while (body.rows.length > MAX_TRADES) body.deleteRow(body.rows.length - 1);
  }

  // --- snapshot (REST through WordPress) ---------------------------------------------------------

  let loading = null;
  let pending = [];

  async function fetchSnapshot() {
    const bars = config.symbols.map((s) =>
      api("chart-data?symbol=" + encodeURIComponent(s) + "&timeframe=5Min&days=5")
        .then((d) => setCandles(s, d.candles || []))
        .catch((e) => console.warn("chart-data", s, e.message))
    );
    const snap = await api("dashboard/snapshot");
    await Promise.all(bars);
    applyStatus(snap.status);
    applyPerformance(snap.performance);
    $("#trp-positions tbody").replaceChildren();
    (snap.positions || []).forEach(applyPosition);
    $("#trp-orders tbody").replaceChildren();
    (snap.open_orders || []).forEach(applyOrder);
    $("#trp-trades tbody").replaceChildren();
    (snap.trades || []).forEach((t) => applyTrade(t, false));
    showError("");
  }

  function resync() {
    if (loading) return loading;
    pending = [];
    loading = fetchSnapshot()
      .catch((error) => {
        showError(error.message);
        setTimeout(resync, 3000);
      })
      .finally(() => {
        loading = null;
        const queued = pending;
        pending = [];
        queued.forEach((fn) => fn());
      });
    return loading;
  }

  // A fill changes cash, equity and the trade count: read them again (at most once a second).
  let performanceTimer = null;
  function refreshPerformanceSoon() {
    if (performanceTimer) return;
    performanceTimer = setTimeout(() => {
      performanceTimer = null;
      api("dashboard/snapshot")
        .then((snap) => applyPerformance(snap.performance))
        .catch(() => {});
    }, 1000);
  }

  function live(fn) {
    return (payload) => (loading ? pending.push(() => fn(payload)) : fn(payload));
  }

  // --- actions (trp_trade) ----------------------------------------------------------------------

  function say(text) {
    const el = $("#trp-action-message");
    if (el) el.textContent = text;
  }

  function newClientOrderId() {
    if (window.crypto && crypto.randomUUID) return "wp-" + crypto.randomUUID();
    return "wp-" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function submitOrder(form) {
    const data = new FormData(form);
    const body = { symbol: data.get("symbol"), side: data.get("side"), qty: String(data.get("qty")), type: data.get("type"), client_order_id: newClientOrderId() };
    if (body.type === "limit") body.limit_price = String(data.get("limit_price"));
    say("sending…");
    try {
      const order = await api("orders/submit", { method: "POST", body });
      say("order " + order.status);
      applyOrder(order);
    } catch (error) {
      say("failed: " + error.message);
    }
  }

  async function cancelOrder(id, button) {
    if (!window.confirm("Cancel this order?")) return;
    button.disabled = true;
    try {
      applyOrder(await api("orders/" + encodeURIComponent(id), { method: "DELETE" }));
      say("order canceled");
    } catch (error) {
      button.disabled = false;
      say("failed: " + error.message);
    }
  }

  async function killSwitch(stop) {
    const question = stop ? "Stop all trading now? Open orders are canceled and no new orders are sent." : "Resume trading?";
    if (!window.confirm(question)) return;
    say(stop ? "stopping…" : "resuming…");
    try {
      if (stop) await api("stop_trading", { method: "POST", body: { reason: "WordPress dashboard kill switch", flatten: false } });
      else await api("resume_trading", { method: "POST", body: {} });
      say(stop ? "trading stopped" : "trading resumed");
      applyStatus(await api("status"));
    } catch (error) {
      say("failed: " + error.message);
    }
  }

  const form = $("#trp-order-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitOrder(form);
    });
    $("#trp-stop-trading").addEventListener("click", () => killSwitch(true));
    $("#trp-resume-trading").addEventListener("click", () => killSwitch(false));
  }

  setupCharts();
  const stream = new TradingRobotPlugWebSocket({
    symbols: config.symbols,
    fetchToken: () => api("websocket/token", { method: "POST", body: {} }),
    handlers: {
      state: setConnection,
      resync: resync,
      // market_data of kind "quote" is the live price only; "bar" and "bar_forming" are candles.
      marketData: live((m) => (m && m.kind === "quote" ? showPrice(m.symbol, m.price) : applyBar(m))),
      tradeUpdate: live((t) => {
        applyTrade(t);
        refreshPerformanceSoon();
      }),
      orderUpdate: live(applyOrder),
      positionUpdate: live(applyPosition),
      performanceUpdate: live(applyPerformance),
      status: live(applyStatus),
      error: (e) => console.warn("stream", e),
    },
  });
  stream.connect();
  // Before the stream is up (or if the backend's WebSocket is unreachable), show the REST data.
  resync();
})();
