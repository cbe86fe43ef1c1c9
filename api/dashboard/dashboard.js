// The ops dashboard: reads the RPCs and manage/get-dashboard-stats with the key the operator
// pasted (kept in sessionStorage, sent only in the Authorization header), draws with uPlot.
// Every value from the API reaches the page through textContent, never as HTML.
"use strict";

(() => {
  const API = "/api/v1/notifications/manage/";
  const KEY = "notify.dashboard.apiKey";
  const POLL_MS = 5000;
  const COLORS = ["#2f6fde", "#1f9d55", "#d97706", "#9333ea", "#0891b2", "#c23b3b", "#6b7480",
    "#db2777"];
  const $ = (id) => document.getElementById(id);
  const state = { stats: null, deadLetters: [], charts: {}, timer: null, loads: 0 };
  window.notifyDashboard = state; // read by the browser test and handy in a console

  class ApiError extends Error {
    constructor(status, body) {
      const detail = body && body.error ? [].concat(body.error).join("; ") : "";
      super(`${status} ${body && body.message ? body.message : ""} ${detail}`.trim());
      this.status = status;
    }
  }

  async function rpc(name, body) {
    const response = await fetch(API + name, {
      method: "POST",
      headers: {
        "Authorization": "Bearer " + sessionStorage.getItem(KEY),
        "Content-Type": "application/json",
      },
      body: JSON.stringify(body || {}),
      cache: "no-store",
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function fillTable(id, rows, columns) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    for (const item of rows) {
      const row = body.insertRow();
      for (const column of columns) {
        if (typeof column === "function") column(row, item);
        else cell(row, item[column], typeof item[column] === "number" ? "num" : "");
      }
    }
  }

  function chart(id, title, xs, series, host) {
    const old = state.charts[id];
    if (old) old.destroy();
    let target = $(id);
    if (!target) {
      target = document.createElement("div");
      target.id = id;
      target.className = "chart";
      host.appendChild(target);
    }
    const width = Math.max(320, (host ? 480 : target.clientWidth || 900) - 10);
    const opts = {
      title, width, height: 220,
      series: [{}].concat(series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
      }))),
      axes: [{}, { size: 50 }],
      scales: { x: { time: true } },
    };
    state.charts[id] = new uPlot(opts, [xs].concat(series.map((s) => s.values)), target);
    state.charts[id].totals = series.map((s) => s.values.reduce((a, b) => a + b, 0));
  }

  function drawCharts(stats) {
    const xs = stats.minutes.map((m) => Date.parse(m) / 1000);
    const channels = Object.entries(stats.channels);
    chart("chart-throughput", "created / min", xs,
      channels.map(([name, c]) => ({ label: name, values: c.created })));
    const host = $("chart-results");
    const active = channels.filter(([, c]) => Object.keys(c.results).length > 0);
    for (const id of Object.keys(state.charts)) {
      if (id.startsWith("chart-results-") &&
          !active.some(([name]) => "chart-results-" + name === id)) {
        state.charts[id].destroy();
        delete state.charts[id];
        const el = $(id);
        if (el) el.remove();
      }
    }
    for (const [name, c] of active) {
      chart("chart-results-" + name, name, xs,
        Object.entries(c.results).map(([status, values]) => ({ label: status, values })), host);
    }
    $("results-empty").hidden = active.length > 0;
  }

  function drawTables(stats) {
    fillTable("providers", stats.providers,
      ["provider", "attempts", "failures", "avgMs", "p50Ms", "p95Ms"]);
    fillTable("circuits", stats.circuits, ["provider", "providerType", "openedAt",
      (row, c) => cell(row, c.halfOpen ? "now (half-open)" : c.retryAt)]);
    fillTable("failures", stats.recentFailures,
      ["at", "channel", "userId", "status", "reason", "detail"]);
    if (stats.queues === null) {
      fillTable("queues", [], []);
      $("queues-note").textContent =
        "Broker queues count every tenant's messages: only the operator tenant sees them.";
    } else {
      fillTable("queues", stats.queues, ["queue", "kind", "messages", "consumers"]);
      $("queues-note").textContent = "";
    }
  }

  function drawDeadLetters(listing) {
    const letters = listing.deadLetters;
    state.deadLetters = letters;
    const byChannel = {};
    for (const letter of letters) byChannel[letter.channel] = (byChannel[letter.channel] || 0) + 1;
    $("dlq-total").textContent = String(letters.length) + (listing.hasMore ? "+" : "");
    fillTable("dlq-sizes", Object.entries(byChannel).map(([channel, n]) => ({ channel, n })),
      ["channel", "n"]);
    fillTable("dlq", letters, ["failedAt", "channel",
      (row, l) => cell(row, l.notificationId), "reason", "attempts",
      (row, l) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Replay";
        button.className = "replay-one";
        button.addEventListener("click", () => change(
          { notificationIds: [l.notificationId] }, "replayed " + l.notificationId));
        row.insertCell().appendChild(button);
      }]);
  }

  async function load() {
    try {
      const [stats, listing] = await Promise.all([
        rpc("get-dashboard-stats"), rpc("list-dead-letters", { limit: 1000 }),
      ]);
      state.stats = stats;
      drawCharts(stats);
      drawTables(stats);
      drawDeadLetters(listing);
      state.loads += 1;
      $("status").textContent = "Updated " + new Date().toLocaleTimeString() +
        (stats.truncated ? " (the hour holds more records than were read)" : "");
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        signOut(error.status === 401 ? "That key is not valid (or was revoked)."
          : "That key lacks the admin scope.");
        return;
      }
      $("status").textContent = "Could not load: " + error.message;
    }
  }

  async function change(selection, done) {
    const buttons = document.querySelectorAll("#board button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const result = await rpc("replay-dead-letters", selection);
      $("dlq-result").textContent = result.dryRun
        ? `Dry run: would replay ${result.count} of ${result.matched} matching; nothing moved.`
        : `Replayed ${result.count} (${done}).`;
    } catch (error) {
      $("dlq-result").textContent = "Replay failed: " + error.message;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      await load();
    }
  }

  function signIn(key) {
    sessionStorage.setItem(KEY, key);
    $("signin-panel").hidden = true;
    $("board").hidden = false;
    $("session").hidden = false;
    $("whoami").textContent = "key " + key.slice(0, 10) + "…";
    load();
    state.timer = setInterval(load, POLL_MS);
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    clearInterval(state.timer);
    $("board").hidden = true;
    $("session").hidden = true;
    $("signin-panel").hidden = false;
    $("signin-error").textContent = message || "";
  }

  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("apikey").value.trim();
    $("apikey").value = "";
    if (key) signIn(key);
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", () => load());
  $("dlq-dryrun").addEventListener("click", () => change({ all: true, dryRun: true }, null));
  $("dlq-replay").addEventListener("click", () => change({ all: true }, "all dead letters"));

  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved);
})();
