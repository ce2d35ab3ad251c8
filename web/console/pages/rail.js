// Regional rail: the runs of a day, and the seat map of a run (free and
// taken seats by coach).
import { h, clear, heading, field, num, cop, time, table, todayBogota, problemText } from "../ui.js";

export function mount(root, { api, navigate }, arg) {
  const [dateArg, runArg, originArg] = arg.split("/");
  const origin = h("select", { name: "origin" }, h("option", { value: "" }, "Either direction"));
  const date = h("input", { type: "date", name: "date", value: /^\d{4}-\d\d-\d\d$/.test(dateArg || "") ? dateArg : todayBogota(), required: true });
  const runs = h("div");
  const seats = h("div");

  root.append(
    heading("Regional rail"),
    h("p.lead", "Runs of the regional line on a day (Bogotá time) and the seats still free on each."),
    h("form.inline.panel", { "aria-label": "Choose a day", onsubmit: (e) => {
      e.preventDefault();
      navigate(`#/rail/${date.value}/-/${origin.value}`);
    } }, field("Day", date), field("From", origin), h("button", { type: "submit" }, "Show runs")),
    h("div.cols",
      h("section.panel", { "aria-labelledby": "runs-title" }, h("h2#runs-title", "Runs"), h("div.runs", runs)),
      h("section.panel", { "aria-labelledby": "seats-title" }, h("h2#seats-title", "Seat map"), seats)));

  async function loadRuns() {
    clear(runs, h("p.muted", "Loading…"));
    try {
      const doc = await api.get("rail/runs?date=" + date.value + (Number(originArg) > 0 ? "&origin=" + Number(originArg) : ""));
      clear(runs, doc.runs.length ? table(`${doc.runs.length} runs on ${doc.date}`, [
        { label: "Train", cell: (r) => r.train_code },
        { label: "From → to", cell: (r) => `${r.origin} → ${r.destination}` },
        { label: "Departs", num: true, cell: (r) => time(r.departure_time) },
        { label: "Arrives", num: true, cell: (r) => time(r.arrival_time) },
        { label: "Free seats", num: true, cell: (r) => num(r.seats_free) },
        { label: "", cell: (r) => h("a", { href: `#/rail/${date.value}/${r.run_id}/${originArg || ""}`, "aria-label": `Seat map of run ${r.run_id}, ${r.train_code} at ${time(r.departure_time)}` }, "Seats") },
      ], doc.runs) : h("p.empty", "No runs on this day."));
    } catch (e) {
      clear(runs, h("p.error", problemText(e)));
    }
  }

  async function loadSeats(runId) {
    clear(seats, h("p.muted", "Loading…"));
    try {
      const doc = await api.get(`rail/runs/${runId}/seats`);
      const coaches = new Map();
      for (const s of doc.seats) {
        if (!coaches.has(s.coach)) coaches.set(s.coach, []);
        coaches.get(s.coach).push(s);
      }
      const free = doc.seats.filter((s) => s.status === "free").length;
      clear(seats,
        h("p", { "data-testid": "seat-summary", "data-free": free, "data-total": doc.seats.length },
          `Run ${doc.run_id}, departing ${time(doc.departure_time)}: ${num(free)} of ${num(doc.seats.length)} seats free.`),
        h("div.legend", { "aria-hidden": "true" },
          h("span.seat", "1"), "free", h("span.seat.taken", "1"), "taken"),
        [...coaches].map(([coach, list]) => h("div.coach",
          h("h3", `Coach ${coach} · ${list[0].class} · ${cop(list[0].price)}`),
          h("ul.seats", { role: "list", "aria-label": `Coach ${coach} seats` }, list.map((s) =>
            h("li.seat" + (s.status === "taken" ? ".taken" : ""), {
              "aria-label": `Seat ${s.number}, ${s.status}`, title: `Seat ${s.number}: ${s.status}`,
            }, String(s.number)))))));
    } catch (e) {
      clear(seats, h("p.error", problemText(e)));
    }
  }

  // The directions are the origins of the day's runs.
  api.get("rail/runs?date=" + date.value).then((d) => {
    const seen = new Map(d.runs.map((r) => [r.origin_station_id, r.origin]));
    for (const [id, name] of seen) {
      origin.append(h("option", { value: id, selected: String(id) === originArg }, "From " + name));
    }
  }).catch(() => {});
  loadRuns();
  if (Number(runArg) > 0) loadSeats(Number(runArg));
  else clear(seats, h("p.empty", "Choose a run to see its seats."));
  return () => {};
}
