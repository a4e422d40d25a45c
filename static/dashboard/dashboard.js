// The dashboard: fetch a REST snapshot, then apply /ws/updates events on top. After a reconnect
// or a gap in the event sequence, fetch the snapshot again so nothing is missed.
(function () {
  "use strict";
  const api = "/api/v1/";
  const MAX_TRADES = 50;
  let socket = null;
  let lastSeq = 0;
  let retry = 0;

  const $ = (sel) => document.querySelector(sel);
  const fmt = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) : "–");

  async function getJSON(path) {
    const response = await fetch(api + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function setConnection(state) {
    const el = $("#connection");
    el.dataset.state = state;
    el.textContent = state;
    el.className = "pill " + (state === "live" ? "on" : "off");
  }

  function applyStatus(s) {
    if (!s || s.subscribed) return;
    if (s.clock) $("#clock").textContent = s.clock;
    if (s.market_time) $("#market-time").textContent = time(s.market_time);
    if (s.market_open !== undefined) $("#market-open").textContent = s.market_open ? "open" : "closed";
    if (s.halted !== undefined) {
      $("#halted-banner").hidden = !s.halted;
      $("#halted-reason").textContent = (s.kill_switch && s.kill_switch.reason) || "";
    }
  }

  function applyPerformance(p) {
    if (p.equity !== undefined) $("#equity").textContent = fmt(p.equity);
    if (p.total_return !== undefined && p.total_return !== null)
      $("#total-return").textContent = (p.total_return * 100).toFixed(2) + "%";
  }

  function applyPrice(row) {
    let tr = document.querySelector('#prices tr[data-symbol="' + row.symbol + '"]');
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.symbol = row.symbol;
      tr.innerHTML = "<td></td><td class=price></td><td class=change></td><td class=ts></td>";
      tr.cells[0].textContent = row.symbol;
      $("#prices tbody").appendChild(tr);
    }
    const price = row.price !== undefined ? row.price : row.close;
    const previous = Number(tr.dataset.price || price);
    tr.querySelector(".price").textContent = fmt(price);
    const change = row.change !== undefined ? Number(row.change) : Number(price) - previous;
    const cell = tr.querySelector(".change");
    cell.textContent = fmt(change);
    cell.className = "change " + (change >= 0 ? "up" : "down");
    tr.querySelector(".ts").textContent = time(row.timestamp);
    tr.dataset.price = price;
  }

  function applyPosition(p) {
    let tr = document.querySelector('#positions tr[data-symbol="' + p.symbol + '"]');
    if (Number(p.qty) === 0) { if (tr) tr.remove(); return; }
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.symbol = p.symbol;
      tr.innerHTML = "<td></td><td></td><td></td><td></td><td></td>";
      $("#positions tbody").appendChild(tr);
    }
    const cells = tr.cells;
    cells[0].textContent = p.symbol;
    cells[1].textContent = fmt(p.qty, 0);
    cells[2].textContent = fmt(p.avg_entry_price);
    cells[3].textContent = fmt(p.last_price);
    cells[4].textContent = fmt(p.unrealized_pnl);
    cells[4].className = Number(p.unrealized_pnl) >= 0 ? "up" : "down";
  }

  function applyTrade(t, prepend = true) {
    if (document.querySelector('#trades tr[data-id="' + t.id + '"]')) return;
    const tr = document.createElement("tr");
    tr.dataset.id = t.id;
    tr.className = "trade-row";
    [time(t.executed_at), t.symbol, t.side, fmt(t.qty, 0), fmt(t.price), fmt(t.realized_pnl)].forEach((v) => {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    });
    const body = $("#trades tbody");
    if (prepend) body.insertBefore(tr, body.firstChild); else body.appendChild(tr);
    while (body.rows.length > MAX_TRADES) body.deleteRow(body.rows.length - 1);
  }

  async function loadSnapshot() {
    const [status, prices, positions, trades] = await Promise.all([
      getJSON("status"), getJSON("stock-data"), getJSON("positions"), getJSON("trades?limit=" + MAX_TRADES),
    ]);
    applyStatus(status);
    prices.stock_data.forEach(applyPrice);
    $("#positions tbody").innerHTML = "";
    positions.results.forEach(applyPosition);
    $("#trades tbody").innerHTML = "";
    trades.results.forEach((t) => applyTrade(t, false));
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    // seq 0 marks direct replies (snapshot on connect, pong); broadcasts count up from 1.
    if (message.seq > 0) {
      if (lastSeq && message.seq > lastSeq + 1) loadSnapshot().catch(console.error);
      lastSeq = message.seq;
    }
    const p = message.payload;
    switch (message.type) {
      case "status": applyStatus(p); break;
      case "market_data": applyPrice(p); break;
      case "trade_update": applyTrade(p); break;
      case "position_update": applyPosition(p); break;
      case "performance_update": applyPerformance(p); break;
      case "error": console.warn("stream error", p); break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/updates");
    socket.onopen = () => {
      retry = 0;
      setConnection("live");
      loadSnapshot().catch(console.error);
    };
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      setConnection(event.code === 4401 ? "unauthorized" : "reconnecting");
      const delay = Math.min(30000, 500 * 2 ** retry) * (0.75 + Math.random() / 2);
      retry += 1;
      setTimeout(connect, delay);
    };
  }

  connect();
})();
