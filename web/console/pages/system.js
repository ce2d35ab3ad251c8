// Live system: request rate and latency by route (from /metrics), the cache
// (from /cache/stats, admins only, and /health/cache), the database, the job
// queue and the command queue (from /metrics and /health/*). Polled every
// few seconds; rates are over the last interval.
import { h, clear, num, table, heading, health, value, problemText } from "../ui.js";
import { timeChart } from "../charts.js";
import * as prom from "../prometheus.js";

const EVERY_MS = 5000;
const KEEP = 120; // points in the rate chart (10 minutes)

const ms = (s) => (s === null || s === undefined ? "—" : (s * 1000 < 10 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(1)) + " ms");
const pct = (x) => (x === null || x === undefined ? "—" : (100 * x).toFixed(1) + " %");

export function mount(root, { api, me }) {
  const isAdmin = me.role === "admin";
  const tiles = h("div.grid", { "aria-live": "polite" });
  const rateChart = h("div.chart", h("p.empty", "The chart starts once two intervals have been measured (10 s)."));
  const routes = h("div");
  const cache = h("div");
  const queue = h("div");
  const state = h("p.hint", { role: "status" });
  const pause = h("button.secondary", { type: "button", "aria-pressed": "false", onclick: () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
  } }, "Pause");

  root.append(
    heading("Live system"),
    h("p.lead", `Refreshed every ${EVERY_MS / 1000} s from /metrics and the health checks; rates and latencies are over the last interval.`),
    h("div.toolbar", pause, state),
    h("section", { "aria-labelledby": "dep-title" }, h("h2#dep-title", "Dependencies"), tiles),
    h("section", { "aria-labelledby": "req-title" },
      h("h2#req-title", "Requests"),
      h("figure.panel", h("figcaption.label", "Requests per second and 95th percentile latency, all routes"), rateChart),
      h("div.panel", routes)),
    h("div.cols",
      h("section.panel", { "aria-labelledby": "cache-title" }, h("h2#cache-title", "Cache"), cache),
      h("section.panel", { "aria-labelledby": "queue-title" }, h("h2#queue-title", "Queues"), queue)),
  );

  let prev = null;
  let prevAt = 0;
  let chart = null;
  let paused = false;
  const xs = [];
  const rates = [];
  const p95s = [];

  function tile(id, label, good, word, note) {
    return h("div.kpi", { "data-testid": id }, h("div.label", label), h("div", health(good, word)), h("div.hint", note || ""));
  }

  async function tick() {
    if (paused) return;
    try {
      const [text, db, redis, broker, stats] = await Promise.all([
        api.get("/metrics"),
        api.probe("/health/db"),
        api.probe("/health/cache"),
        api.probe("/health/queue"),
        isAdmin ? api.get("cache/stats") : Promise.resolve(null),
      ]);
      const now = Date.now();
      const samples = prom.parse(text);
      const seconds = prev ? (now - prevAt) / 1000 : 0;
      const rows = prom.byRoute(prev, samples, seconds);
      renderTiles(samples, db, redis, broker);
      renderRoutes(rows);
      renderChart(now, rows);
      renderCache(samples, stats, redis);
      renderQueues(samples, broker);
      prev = samples;
      prevAt = now;
      state.textContent = "Updated " + new Date(now).toLocaleTimeString("en-GB");
    } catch (e) {
      state.textContent = "Could not refresh: " + problemText(e);
    }
  }

  function renderTiles(samples, db, redis, broker) {
    const up = prom.scalar(samples, "transitd_uptime_seconds");
    const conns = prom.scalar(samples, "transitd_http_connections");
    clear(tiles,
      tile("health-service", "Service", true, "up", `${num(Math.round(up || 0))} s up · ${num(conns)} connections`),
      tile("health-db", "Database", db.ok, db.ok ? "healthy" : "unhealthy",
        db.ok ? `${db.body.latency_ms.toFixed(1)} ms · ${(db.body.replicas || []).length} replicas` : (db.body && db.body.error) || "unreachable"),
      tile("health-cache", "Cache (Redis)", redis.ok, redis.ok ? "healthy" : "unhealthy",
        `breaker ${(redis.body && redis.body.breaker) || "unknown"}`),
      tile("health-queue", "Command queue", broker.body && broker.body.status === "disabled" ? null : broker.ok,
        (broker.body && broker.body.status) || "unreachable",
        broker.ok && broker.body.status === "healthy" ? `${broker.body.ready} waiting · ${broker.body.consumers} consumers` : ""));
  }

  function renderRoutes(rows) {
    const shown = rows.filter((r) => r.rate === null || r.rate > 0).slice(0, 20);
    clear(routes, table(prev ? "Busiest routes over the last interval" : "Routes since the server started", [
      { label: "Route", cell: (r) => h("code", r.route) },
      { label: "Requests/s", num: true, cell: (r) => (r.rate === null ? num(r.count) + " total" : r.rate.toFixed(2)) },
      { label: "p50", num: true, cell: (r) => ms(r.p50) },
      { label: "p95", num: true, cell: (r) => ms(r.p95) },
      { label: "p99", num: true, cell: (r) => ms(r.p99) },
      { label: "5xx", num: true, cell: (r) => num(r.errors) },
    ], shown));
    if (!shown.length) routes.append(h("p.empty", "No requests in the last interval."));
  }

  function renderChart(now, rows) {
    if (!prev) return;
    const total = rows.reduce((a, r) => a + (r.rate || 0), 0);
    // p95 over all routes: the busiest route's is a fair stand-in for the chart; the table has each.
    const weighted = rows.reduce((a, r) => a + (r.p95 || 0) * (r.rate || 0), 0);
    xs.push(now / 1000);
    rates.push(+total.toFixed(3));
    p95s.push(total ? +((weighted / total) * 1000).toFixed(2) : null);
    if (xs.length > KEEP) { xs.shift(); rates.shift(); p95s.shift(); }
    const series = [
      { label: "req/s", values: rates, format: (v) => v.toFixed(2) },
      { label: "p95 ms (weighted)", values: p95s, scale: "ms", format: (v) => v.toFixed(1) },
    ];
    if (xs.length < 2) return; // a line needs two points
    if (!chart) {
      clear(rateChart);
      chart = timeChart(rateChart, { xs, series, axes: [{ label: "req/s" }, { label: "ms", scale: "ms" }] });
    } else {
      chart.update(xs, series);
    }
  }

  function renderCache(samples, stats, redis) {
    const families = new Map();
    for (const s of prom.pick(samples, "transitd_cache_requests_total")) {
      const f = families.get(s.labels.family) || { family: s.labels.family, hit: 0, miss: 0, bypass: 0 };
      f[s.labels.result] = s.value;
      families.set(s.labels.family, f);
    }
    const rows = [...families.values()].filter((f) => f.hit + f.miss + f.bypass > 0)
      .sort((a, b) => b.hit + b.miss - (a.hit + a.miss));
    const near = prom.scalar(samples, "transitd_near_cache_entries");
    const breakerState = ["closed", "open", "half-open"][prom.scalar(samples, "transitd_redis_breaker_state") || 0];
    clear(cache,
      h("dl.grid.kpis",
        h("div.kpi", h("dt", "Hit ratio"), h("dd", stats ? value("span", stats.hit_ratio, pct(stats.hit_ratio)) : "—",
          h("span.note", stats ? `${num(stats.hits)} hits · ${num(stats.misses)} misses` : "admins see /cache/stats"))),
        h("div.kpi", h("dt", "Near-cache"), h("dd", value("span", near, num(near)), h("span.note", "entries in this process"))),
        h("div.kpi", h("dt", "Breaker"), h("dd", health(breakerState === "closed", breakerState)),
          h("span.note", stats && stats.redis_used_memory !== null ? `Redis ${num(Math.round(stats.redis_used_memory / 1024))} KiB` : ""))),
      rows.length ? table("Hit ratio by family (since start)", [
        { label: "Family", cell: (f) => f.family },
        { label: "Hits", num: true, cell: (f) => num(f.hit) },
        { label: "Misses", num: true, cell: (f) => num(f.miss + f.bypass) },
        { label: "Ratio", num: true, cell: (f) => pct(f.hit / (f.hit + f.miss + f.bypass)) },
        { label: "", cell: (f) => {
          const bar = h("div.bar", { "aria-hidden": "true" });
          bar.style.width = ((100 * f.hit) / (f.hit + f.miss + f.bypass)).toFixed(1) + "%";
          return bar;
        } },
      ], rows) : h("p.empty", "No cached reads yet."));
    void redis;
  }

  function renderQueues(samples, broker) {
    const g = (n) => prom.scalar(samples, n);
    const b = broker.body || {};
    const cmd = (event) => prom.scalar(samples, "transitd_async_commands_total", { event });
    const applied = prom.pick(samples, "transitd_async_apply_seconds_bucket")
      .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }));
    clear(queue,
      h("dl.grid.kpis",
        h("div.kpi", { "data-testid": "job-queue" }, h("dt", "Job queue depth"), h("dd", value("span", g("transitd_job_queue_depth"), num(g("transitd_job_queue_depth")))),
          h("span.note", `${num(g("transitd_workers_busy"))} of ${num(g("transitd_workers"))} workers busy`)),
        h("div.kpi", h("dt", "In flight"), h("dd", num(g("transitd_inflight_requests"))), h("span.note", "requests accepted, not answered")),
        h("div.kpi", { "data-testid": "command-queue" }, h("dt", "Command queue"),
          h("dd", b.status === "healthy" ? value("span", b.ready, num(b.ready)) : b.status || "—"),
          h("span.note", b.status === "healthy" ? `${num(b.unacked)} unacked · ${num(b.dead_lettered)} dead-lettered · ${num(b.consumers)} consumers` : "RabbitMQ (AMQP_URL)"))),
      cmd("published") !== null ? h("p.hint",
        `Asynchronous commands since start: ${num(cmd("published"))} published, ${num(cmd("succeeded"))} succeeded, ` +
        `${num(cmd("failed"))} failed, ${num(cmd("dead_lettered"))} dead-lettered; ` +
        `publish to outcome p95 ${ms(prom.quantile(0.95, applied))}.`) : null);
  }

  tick();
  const timer = setInterval(tick, EVERY_MS);
  return () => {
    clearInterval(timer);
    if (chart) chart.destroy();
  };
}
