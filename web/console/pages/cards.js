// Cards. Operators and admins look up any card, block and unblock it, and
// recharge it at a point of sale; riders see their own cards and may block
// one (a lost card). Balance and ledger come from the card endpoints.
import { h, clear, heading, field, num, cop, dateTime, table, statusBadge, value, toast, problemText } from "../ui.js";

export function mount(root, { api, me, navigate }, arg) {
  const staff = me.role === "operator" || me.role === "admin";
  const cardInput = h("input", { type: "number", name: "card_id", min: "1", step: "1", required: true, inputmode: "numeric" });
  const lookupStatus = h("p", { role: "status" });
  const view = h("div");

  root.append(
    heading("Cards"),
    h("p.lead", staff
      ? "Look up a travel card: balance, ledger, block or unblock it, and recharge it at a point of sale."
      : "Your travel cards: balance and movements. Block a card you have lost."),
    staff
      ? h("form.inline.panel", { "aria-label": "Find a card", onsubmit: (e) => { e.preventDefault(); navigate("#/cards/" + cardInput.value); } },
        field("Card number (id)", cardInput), h("button", { type: "submit" }, "Look up"), lookupStatus)
      : h("div.panel", { "aria-label": "Your cards" }, (me.cards || []).length
        ? h("ul.toolbar", (me.cards || []).map((id) => h("li", h("a", { href: "#/cards/" + id }, "Card " + id))))
        : h("p.empty", "You have no cards yet.")),
    view);

  async function show(id) {
    cardInput.value = id;
    clear(view, h("p.muted", "Loading card " + id + "…"));
    try {
      const [card, ledger] = await Promise.all([api.get("cards/" + id), api.get(`cards/${id}/transactions?limit=20`)]);
      render(card, ledger);
    } catch (e) {
      clear(view, h("p.error", { role: "alert" }, e.status === 404 ? `Card ${id} does not exist.` : problemText(e)));
    }
  }

  function render(card, ledger) {
    const actionStatus = h("p", { role: "status" });
    const blockBtn = card.status === "active"
      ? h("button", { type: "button", "data-action": "block", onclick: () => act("block") }, "Block card")
      : staff ? h("button", { type: "button", "data-action": "unblock", onclick: () => act("unblock") }, "Unblock card") : null;

    async function act(what) {
      const btn = view.querySelector(`[data-action="${what}"]`);
      btn.disabled = true;
      try {
        await api.post(`cards/${card.card_id}/${what}`);
        toast(`Card ${card.card_id} ${what === "block" ? "blocked" : "unblocked"}.`);
        await show(card.card_id);
        const next = view.querySelector("[data-action]");
        if (next) next.focus();
      } catch (e) {
        actionStatus.className = "error";
        actionStatus.textContent = problemText(e);
        btn.disabled = false;
      }
    }

    const ledgerBody = h("div");
    let cursor = ledger.next_cursor;
    const entries = [...ledger.transactions];
    const more = h("button.secondary", { type: "button", onclick: loadMore }, "Older movements");
    function renderLedger() {
      clear(ledgerBody, entries.length ? table("Ledger, newest first", [
        { label: "When", cell: (t) => dateTime(t.created_at) },
        { label: "Kind", cell: (t) => t.kind },
        { label: "Amount", num: true, cell: (t) => cop(t.amount) },
        { label: "Balance after", num: true, cell: (t) => cop(t.balance_after) },
        { label: "Reference", cell: (t) => t.reference || "" },
      ], entries) : h("p.empty", "No movements yet."));
      more.hidden = !cursor;
    }
    async function loadMore() {
      const page = await api.get(`cards/${card.card_id}/transactions?limit=20&cursor=${cursor}`);
      entries.push(...page.transactions);
      cursor = page.next_cursor;
      renderLedger();
    }
    renderLedger();

    clear(view,
      h("section.panel", { "aria-labelledby": "card-title", "data-card-id": card.card_id },
        h("h2#card-title", `Card ${card.card_id} · ${card.card_number}`),
        h("dl.grid.kpis",
          h("div.kpi", h("dt", "Status"), h("dd", { "data-testid": "card-status", "data-value": card.status }, statusBadge(card.status))),
          h("div.kpi", h("dt", "Balance"), h("dd", value("span", card.balance, cop(card.balance)))),
          h("div.kpi", h("dt", "Trips on credit"), h("dd", num(card.credit_trips_used))),
          h("div.kpi", h("dt", "Last used"), h("dd", h("span.note", dateTime(card.last_used_date)))),
          h("div.kpi", h("dt", "Owner"), h("dd", h("span.note", card.user_id ? "user " + card.user_id : "anonymous")))),
        h("div.toolbar", blockBtn, actionStatus)),
      staff ? rechargeForm(card) : null,
      h("section.panel", { "aria-label": "Ledger" }, ledgerBody, more));
  }

  function rechargeForm(card) {
    const amount = h("input", { type: "number", name: "amount", min: "1000", max: "500000", step: "100", required: true, value: "10000" });
    const point = h("input", { type: "number", name: "recharge_point_id", min: "1", step: "1" });
    const submit = h("button", { type: "submit", disabled: card.status !== "active" }, "Recharge");
    const status = h("p", { role: "status" });
    return h("form.panel", { "aria-labelledby": "recharge-title", onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      const body = { card_id: card.card_id, amount: Number(amount.value) };
      if (point.value) body.recharge_point_id = Number(point.value);
      try {
        // One key per attempt: a retried click is not a second recharge.
        const r = await api.post("cards/recharge", body, { headers: { "Idempotency-Key": api.idempotencyKey() } });
        toast(`Recharged ${cop(r.amount)}: the balance is ${cop(r.new_balance)}.`);
        await show(card.card_id);
      } catch (err) {
        status.className = "error";
        status.textContent = "Not recharged: " + problemText(err);
        submit.disabled = false;
      }
    } },
    h("h2#recharge-title", "Recharge at a point of sale"),
    card.status !== "active" ? h("p.hint", "A blocked card cannot be recharged.") : null,
    h("div.inline.toolbar",
      field("Amount (COP)", amount, "1,000 to 500,000"),
      field("Recharge point", point, "Optional: the point of sale's number")),
    submit, status);
  }

  if (Number(arg) > 0) show(Number(arg));
  else if (!staff && (me.cards || []).length) navigate("#/cards/" + me.cards[0]);
  return () => {};
}
