// Small DOM helpers shared by the pages: element building, formatting in
// Bogotá's time zone, tables, messages.

/**
 * h("tag.class#id", {attrs}, ...children). Strings become text nodes (never
 * HTML), null and false are skipped, arrays are flattened. Attributes
 * starting with "on" are listeners.
 */
export function h(spec, attrs, ...children) {
  const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
  const el = document.createElement((m && m[1]) || "div");
  for (const part of ((m && m[2]) || "").match(/[.#][\w-]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const TZ = "America/Bogota";
const intFmt = new Intl.NumberFormat("en-US");
const copFmt = new Intl.NumberFormat("es-CO", { style: "currency", currency: "COP", maximumFractionDigits: 0 });
const timeFmt = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hour: "2-digit", minute: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit",
});
const dayFmt = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" });

export const num = (n) => (n === null || n === undefined ? "—" : intFmt.format(n));
export const cop = (n) => (n === null || n === undefined ? "—" : copFmt.format(n));
export const time = (iso) => (iso ? timeFmt.format(new Date(iso)) : "—");
export const dateTime = (iso) => (iso ? dateTimeFmt.format(new Date(iso)) : "—");
/** Today's date in Bogotá, YYYY-MM-DD. */
export const todayBogota = () => dayFmt.format(new Date());

export function minutesAway(iso, now = Date.now()) {
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  if (s < 60) return "now";
  return Math.floor(s / 60) + " min";
}

/** A value element carrying its raw number for tests and copy-paste. */
export function value(tag, raw, text) {
  return h(tag, { "data-value": raw }, text);
}

const severityClass = { INFO: "s-info", WARNING: "s-warn", CRITICAL: "s-bad" };
export function severityBadge(sev) {
  return h("span.badge." + (severityClass[sev] || "s-muted"), sev);
}

const statusClass = { on_time: "s-ok", arriving: "s-info", delayed: "s-warn", cancelled: "s-bad",
  active: "s-ok", blocked: "s-bad", free: "s-ok", taken: "s-muted" };
export function statusBadge(status) {
  return h("span.badge." + (statusClass[status] || "s-muted"), String(status).replace("_", " "));
}

/** Health: a coloured dot with the word, never colour alone. */
export function health(good, word) {
  return h("span.status." + (good === null ? "s-muted" : good ? "s-ok" : "s-bad"), h("span.dot", { "aria-hidden": "true" }), word);
}

let toastTimer = null;
export function toast(message, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.toggle("bad", bad);
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 5000);
}

/** The message of a failed call, for people. */
export function problemText(e) {
  if (e && e.problem) {
    const p = e.problem;
    const fields = (p.errors || []).map((x) => `${x.field} ${x.message}`).join("; ");
    return fields ? `${p.detail || p.title}: ${fields}` : p.detail || p.title;
  }
  return (e && e.message) || String(e);
}

/**
 * A table: columns [{label, num?, cell(row) -> node|string}], rows, caption.
 * foot: optional array of cells for a totals row.
 */
export function table(caption, columns, rows, foot) {
  return h("div.scroll",
    h("table",
      caption ? h("caption", caption) : null,
      h("thead", h("tr", columns.map((c) => h("th" + (c.num ? ".num" : ""), { scope: "col" }, c.label)))),
      h("tbody", rows.map((r) => h("tr", columns.map((c) => h("td" + (c.num ? ".num" : ""), c.cell(r)))))),
      foot ? h("tfoot", h("tr", foot.map((cell, i) => h("td" + (columns[i] && columns[i].num ? ".num" : ""), cell)))) : null));
}

/** A labelled form control: field("Amount", input). */
export function field(label, control, hint) {
  if (!control.id) control.id = "f-" + Math.random().toString(36).slice(2, 9);
  const hintEl = hint ? h("span.hint", { id: control.id + "-hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div.field", h("label", { for: control.id }, label), control, hintEl);
}

/** Every page heading takes focus after navigation (screen readers hear the page). */
export function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

/** Stations for pickers, every page of them, loaded once per session. */
let stationsPromise = null;
export function allStations(api) {
  if (!stationsPromise) {
    stationsPromise = (async () => {
      const out = [];
      let cursor = "";
      do {
        const page = await api.get(`stations?limit=100${cursor ? "&cursor=" + cursor : ""}`);
        out.push(...page.stations);
        cursor = page.next_cursor;
      } while (cursor);
      return out;
    })().catch((e) => {
      stationsPromise = null;
      throw e;
    });
  }
  return stationsPromise;
}

/** A <select> of stations grouped by locality. */
export function stationSelect(stations, selected, attrs = {}) {
  const byLocality = new Map();
  for (const s of stations) {
    if (!s.is_active) continue;
    const loc = s.locality || "Outside Bogotá";
    if (!byLocality.has(loc)) byLocality.set(loc, []);
    byLocality.get(loc).push(s);
  }
  const groups = [...byLocality.keys()].sort((a, b) => a.localeCompare(b, "es"));
  return h("select", attrs,
    groups.map((loc) => h("optgroup", { label: loc },
      byLocality.get(loc).sort((a, b) => a.name.localeCompare(b.name, "es")).map((s) =>
        h("option", { value: s.station_id, selected: s.station_id === selected }, `${s.name} (${s.station_code})`)))));
}
