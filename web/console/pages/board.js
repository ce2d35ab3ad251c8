// Station board: a station's next arrivals and active alerts, pushed by the
// server over Server-Sent Events (GET /stations/{id}/live). The browser's
// EventSource reconnects by itself and sends Last-Event-ID; each event is a
// whole snapshot, so the page only ever replaces what it shows.
import { h, clear, heading, time, minutesAway, statusBadge, severityBadge, dateTime, table, allStations,
  stationSelect, field, problemText } from "../ui.js";

/** Opens the live stream of a station; handlers get the parsed documents. */
export function liveStream(stationId, { arrivals, alerts, state }) {
  const es = new EventSource(`/api/v1/stations/${stationId}/live`);
  es.addEventListener("open", () => state("live"));
  es.addEventListener("error", () => state(es.readyState === EventSource.CLOSED ? "closed" : "reconnecting"));
  if (arrivals) es.addEventListener("arrivals", (ev) => arrivals(JSON.parse(ev.data), ev.lastEventId));
  if (alerts) es.addEventListener("alerts", (ev) => alerts(JSON.parse(ev.data), ev.lastEventId));
  return () => es.close();
}

export function liveState(word) {
  const cls = { live: "s-ok", reconnecting: "s-warn", closed: "s-bad", connecting: "s-muted" }[word] || "s-muted";
  const text = { live: "Live", reconnecting: "Reconnecting…", closed: "Disconnected", connecting: "Connecting…" }[word] || word;
  return h("span.status.live-state." + cls, { "data-state": word }, h("span.dot", { "aria-hidden": "true" }), text);
}

/** The alerts of a station as a list; extra(alert) may add controls. */
export function alertList(alerts, extra) {
  if (!alerts.length) return h("p.empty", "No active alerts.");
  return h("ul.alerts", alerts.map((a) => h("li.sev-" + a.severity, { "data-alert-id": a.alert_id },
    h("div.row",
      h("div", severityBadge(a.severity), " ", h("strong", a.message)),
      extra ? extra(a) : null),
    h("div.meta", `#${a.alert_id} · ${a.alert_type} · ${a.route_id ? "route " + a.route_id : "this station"} · since ${dateTime(a.start_timestamp)}` +
      (a.end_timestamp ? ` · until ${dateTime(a.end_timestamp)}` : "")))));
}

export function mount(root, { api, navigate }, arg) {
  const picker = h("div");
  const stateEl = h("span", liveState("connecting"));
  const title = h("h2#arr-title", "Next arrivals");
  const arrivalsEl = h("div");
  const alertsEl = h("div", { "aria-live": "polite", "aria-relevant": "additions text" });
  const updated = h("span.hint");
  let close = null;
  let lastArrivals = null;
  const ticker = setInterval(() => lastArrivals && renderArrivals(lastArrivals), 15000);

  root.append(
    heading("Station board"),
    h("p.lead", "Arrivals in the next hour and the alerts in force, updated by the server as they change."),
    h("div.toolbar", picker, h("span.spacer"), stateEl, updated),
    h("div.cols",
      h("section.panel", { "aria-labelledby": "arr-title" }, title, arrivalsEl),
      h("section.panel", { "aria-labelledby": "alerts-title" }, h("h2#alerts-title", "Alerts"), alertsEl)),
  );

  function renderArrivals(doc) {
    lastArrivals = doc;
    const rows = doc.arrivals;
    clear(arrivalsEl, rows.length ? table(null, [
      { label: "Route", cell: (a) => h("strong", a.route_code) },
      { label: "Vehicle", cell: (a) => a.vehicle_code || "—" },
      { label: "Due", num: true, cell: (a) => minutesAway(a.estimated_arrival_time) },
      { label: "At", num: true, cell: (a) => time(a.estimated_arrival_time) },
      { label: "Status", cell: (a) => statusBadge(a.status) },
    ], rows.slice(0, 25)) : h("p.empty", "No arrivals in the next hour."));
    arrivalsEl.dataset.count = String(rows.length);
  }

  async function open(stationId) {
    if (close) close();
    clear(arrivalsEl, h("p.muted", "Connecting…"));
    clear(alertsEl);
    clear(stateEl, liveState("connecting"));
    close = liveStream(stationId, {
      arrivals: (doc) => {
        renderArrivals(doc);
        updated.textContent = " · updated " + new Date().toLocaleTimeString("en-GB");
      },
      alerts: (doc) => clear(alertsEl, alertList(doc.alerts)),
      state: (word) => clear(stateEl, liveState(word)),
    });
  }

  (async () => {
    try {
      const stations = await allStations(api);
      const first = Number(arg) || 7;
      const select = stationSelect(stations, first, { onchange: () => navigate("#/board/" + select.value) });
      clear(picker, h("form.inline", { onsubmit: (e) => e.preventDefault() }, field("Station", select)));
      const s = stations.find((x) => x.station_id === first);
      title.textContent = "Next arrivals" + (s ? " at " + s.name : "");
      open(first);
    } catch (e) {
      clear(picker, h("p.error", "Could not load stations: " + problemText(e)));
    }
  })();

  return () => {
    clearInterval(ticker);
    if (close) close();
  };
}
