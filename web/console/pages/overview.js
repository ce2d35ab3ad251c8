// Overview: trips today and in total, revenue, active users, per-locality
// figures with bars, and daily trends — all from the analytics endpoints.
import { h, clear, num, cop, value, table, heading, problemText } from "../ui.js";
import { timeChart } from "../charts.js";

const REFRESH_MS = 30000;

export function mount(root, { api }) {
  const daysSelect = h("select#trend-days", { onchange: () => load() },
    h("option", { value: "7" }, "7 days"), h("option", { value: "30", selected: true }, "30 days"),
    h("option", { value: "90" }, "90 days"));
  const kpis = h("dl.grid.kpis", { "aria-live": "polite" });
  const localities = h("div");
  const trips = h("div.chart");
  const revenue = h("div.chart");
  const trendText = h("p.hint");
  const state = h("p.hint", { role: "status" });
  let charts = [];
  let timer = null;

  root.append(
    heading("Overview"),
    h("p.lead", "Trips, revenue and riders across the network, from the analytics API (cached up to a minute)."),
    h("div.toolbar", h("button.secondary", { type: "button", onclick: () => load() }, "Refresh"), state),
    h("section", { "aria-labelledby": "kpi-title" }, h("h2#kpi-title", "Today and in total"), kpis),
    h("section", { "aria-labelledby": "trend-title" },
      h("div.toolbar", h("h2#trend-title", "Trends"), h("span.spacer"),
        h("label", { for: "trend-days" }, "Period"), daysSelect),
      h("div.cols",
        h("figure.panel", h("figcaption.label", "Trips per day"), trips),
        h("figure.panel", h("figcaption.label", "Revenue per day (COP)"), revenue)),
      trendText),
    h("section", { "aria-labelledby": "loc-title" }, h("h2#loc-title", "By locality"), h("div.panel", localities)),
  );

  function kpi(id, label, raw, text, note) {
    return h("div.kpi", { "data-testid": id },
      h("dt", label), h("dd", value("span", raw, text), note ? h("span.note", note) : null));
  }

  async function load() {
    state.textContent = "Loading…";
    try {
      const days = daysSelect.value;
      const [total, revenueDoc, active, users, byTrips, byRevenue, daily] = await Promise.all([
        api.get("analytics/trips/total"),
        api.get("analytics/revenue"),
        api.get("analytics/users/active"),
        api.get("users/count"),
        api.get("analytics/trips/localities"),
        api.get("analytics/revenue/localities"),
        api.get("analytics/trips/daily?days=" + days),
      ]);
      const today = daily.days[daily.days.length - 1];
      clear(kpis,
        kpi("trips-today", "Trips today", today.total_trips, num(today.total_trips),
          `${num(today.completed_trips)} completed · ${today.date}`),
        kpi("trips-total", "Trips in total", total.total_trips, num(total.total_trips),
          `${num(total.completed_trips)} completed · ${num(total.active_trips)} in progress`),
        kpi("revenue-today", "Revenue today", today.total_revenue, cop(today.total_revenue)),
        kpi("revenue-total", "Revenue in total", revenueDoc.total_revenue, cop(revenueDoc.total_revenue), revenueDoc.currency),
        kpi("users-active", "Active riders", active.active_users_count, num(active.active_users_count),
          "travelled in the last 30 days"),
        kpi("users-total", "Registered users", users.total_users, num(users.total_users)));
      renderLocalities(byTrips.localities, byRevenue.data);
      renderTrends(daily.days);
      state.textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
    } catch (e) {
      state.textContent = "Could not load: " + problemText(e);
    }
  }

  function renderLocalities(rows, revenueRows) {
    const revenueOf = new Map(revenueRows.map((r) => [r.locality_id, r.total_revenue]));
    const max = Math.max(1, ...rows.map((r) => r.total_trips));
    const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
    clear(localities, table("Trips and revenue by the locality of the boarding station", [
      { label: "Locality", cell: (r) => r.locality },
      { label: "Trips", num: true, cell: (r) => value("span", r.total_trips, num(r.total_trips)) },
      { label: "Completed", num: true, cell: (r) => num(r.completed_trips) },
      { label: "In progress", num: true, cell: (r) => num(r.active_trips) },
      { label: "Revenue", num: true, cell: (r) => value("span", revenueOf.get(r.locality_id) ?? r.total_revenue, cop(revenueOf.get(r.locality_id) ?? r.total_revenue)) },
      { label: "Share of trips", cell: (r) => {
        const bar = h("div.bar", { "aria-hidden": "true" });
        bar.style.width = ((100 * r.total_trips) / max).toFixed(1) + "%";
        return bar;
      } },
    ], rows, ["All localities", value("span", sum("total_trips"), num(sum("total_trips"))), num(sum("completed_trips")),
      num(sum("active_trips")), cop(sum("total_revenue")), ""]));
  }

  function renderTrends(days) {
    // Days are Bogotá dates; noon UTC keeps each on its own day on the axis.
    const xs = days.map((d) => Date.parse(d.date + "T12:00:00Z") / 1000);
    const tripSeries = [{ label: "Trips", values: days.map((d) => d.total_trips), bars: true, format: num }];
    const revenueSeries = [{ label: "Revenue", values: days.map((d) => d.total_revenue), bars: true, format: cop }];
    if (!charts.length) {
      charts = [
        timeChart(trips, { xs, series: tripSeries, axes: [{ label: "trips", format: num }], pad: 43200 }),
        timeChart(revenue, { xs, series: revenueSeries, axes: [{ label: "COP", format: (v) => num(v) }], pad: 43200 }),
      ];
    } else {
      charts[0].update(xs, tripSeries);
      charts[1].update(xs, revenueSeries);
    }
    const totalTrips = days.reduce((a, d) => a + d.total_trips, 0);
    const totalRevenue = days.reduce((a, d) => a + d.total_revenue, 0);
    const best = days.reduce((a, d) => (d.total_trips > a.total_trips ? d : a), days[0]);
    trendText.textContent = `Over ${days.length} days: ${num(totalTrips)} trips and ${cop(totalRevenue)}; ` +
      `busiest day ${best.date} with ${num(best.total_trips)} trips.`;
  }

  load();
  timer = setInterval(load, REFRESH_MS);
  return () => {
    clearInterval(timer);
    charts.forEach((c) => c.destroy());
  };
}
