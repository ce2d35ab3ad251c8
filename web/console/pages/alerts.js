// Alerts (admins): publish an alert on a station or a route, and end one.
// The list below is the chosen station's live alert stream, so a new alert
// or an ended one shows there as every board sees it.
import { h, clear, heading, field, allStations, stationSelect, toast, problemText } from "../ui.js";
import { liveStream, liveState, alertList } from "./board.js";

export function mount(root, { api, navigate }, arg) {
  const message = h("textarea", { name: "message", required: true, maxlength: "2000" });
  const severity = h("select", { name: "severity" },
    ["INFO", "WARNING", "CRITICAL"].map((s) => h("option", { value: s, selected: s === "WARNING" }, s)));
  const onStation = h("input", { type: "radio", name: "target", value: "station", checked: true, id: "target-station" });
  const onRoute = h("input", { type: "radio", name: "target", value: "route", id: "target-route" });
  const targetBox = h("div");
  const ends = h("input", { type: "datetime-local", name: "ends" });
  const submit = h("button", { type: "submit" }, "Publish alert");
  const formStatus = h("p", { role: "status" });
  const listPicker = h("div");
  const listState = h("span", liveState("connecting"));
  const listEl = h("div", { "aria-live": "polite" });
  let stations = [];
  let routes = [];
  let stationTarget = null;
  let routeTarget = null;
  let close = null;

  const form = h("form.panel", { "aria-labelledby": "new-title", onsubmit: publish },
    h("h2#new-title", "New alert"),
    field("Message", message, "What riders should know; up to 2,000 characters."),
    field("Severity", severity),
    h("fieldset", h("legend", "Applies to"),
      h("div.radios",
        h("label", { for: "target-station" }, onStation, "A station"),
        h("label", { for: "target-route" }, onRoute, "A route (every station it serves)"))),
    targetBox,
    field("Ends", ends, "Optional, Bogotá time; empty: until ended by hand."),
    submit, formStatus);

  root.append(
    heading("Alerts"),
    h("p.lead", "Publish service alerts and end them. Boards and live streams show the change within a second."),
    h("div.cols", form,
      h("section.panel", { "aria-labelledby": "list-title" },
        h("h2#list-title", "Active alerts"),
        h("div.toolbar", listPicker, h("span.spacer"), listState),
        listEl)));

  function renderTarget() {
    clear(targetBox, onStation.checked ? field("Station", stationTarget) : field("Route", routeTarget));
  }
  onStation.addEventListener("change", renderTarget);
  onRoute.addEventListener("change", renderTarget);

  /** datetime-local is wall time in Bogotá (UTC−5, no daylight saving). */
  function bogotaToIso(local) {
    return local ? new Date(local + ":00-05:00").toISOString() : undefined;
  }

  async function publish(ev) {
    ev.preventDefault();
    submit.disabled = true;
    formStatus.className = "";
    formStatus.textContent = "Publishing…";
    const body = { message: message.value.trim(), severity: severity.value };
    if (onStation.checked) body.station_id = Number(stationTarget.value);
    else body.route_id = Number(routeTarget.value);
    const end = bogotaToIso(ends.value);
    if (end) body.end_timestamp = end;
    try {
      const alert = await api.post("alerts", body);
      formStatus.textContent = `Alert #${alert.alert_id} published.`;
      toast(`Alert #${alert.alert_id} published.`);
      message.value = "";
      if (body.station_id && String(body.station_id) !== listSelect.value) navigate("#/alerts/" + body.station_id);
    } catch (e) {
      formStatus.className = "error";
      formStatus.textContent = "Not published: " + problemText(e);
    } finally {
      submit.disabled = false;
    }
  }

  async function endAlert(alert, button) {
    button.disabled = true;
    try {
      await api.patch("alerts/" + alert.alert_id, { end_timestamp: new Date().toISOString() });
      toast(`Alert #${alert.alert_id} ended.`);
    } catch (e) {
      toast("Could not end the alert: " + problemText(e), true);
      button.disabled = false;
    }
  }

  let listSelect = null;
  function watch(stationId) {
    if (close) close();
    clear(listEl, h("p.muted", "Connecting…"));
    close = liveStream(stationId, {
      alerts: (doc) => clear(listEl, alertList(doc.alerts, (a) =>
        h("button.secondary", { type: "button", "aria-label": `End alert #${a.alert_id}`, onclick: (e) => endAlert(a, e.currentTarget) }, "End now"))),
      state: (word) => clear(listState, liveState(word)),
    });
  }

  (async () => {
    try {
      [stations, routes] = await Promise.all([allStations(api), api.get("routes").then((d) => d.routes)]);
      const first = Number(arg) || 7;
      stationTarget = stationSelect(stations, first, { name: "station_id" });
      routeTarget = h("select", { name: "route_id" }, routes.filter((r) => r.is_active).map((r) =>
        h("option", { value: r.route_id }, `${r.route_code} · ${r.name}`)));
      renderTarget();
      listSelect = stationSelect(stations, first, { onchange: () => navigate("#/alerts/" + listSelect.value) });
      clear(listPicker, h("form.inline", { onsubmit: (e) => e.preventDefault() }, field("Station", listSelect)));
      watch(first);
    } catch (e) {
      clear(targetBox, h("p.error", "Could not load stations and routes: " + problemText(e)));
    }
  })();

  return () => {
    if (close) close();
  };
}
