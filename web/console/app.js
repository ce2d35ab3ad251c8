// The console shell: sign-in, the navigation (which adapts to the role), and
// hash routes (#/overview, #/board/7, #/cards/12 …). Each page is a module
// exporting mount(root, ctx, arg) that returns a function to unmount it
// (closing its streams and timers).
import * as api from "./api.js";
import { h, clear, field, toast, problemText } from "./ui.js";

const PAGES = [
  { id: "overview", label: "Overview", roles: ["rider", "operator", "admin"], load: () => import("./pages/overview.js") },
  { id: "system", label: "Live system", roles: ["operator", "admin"], load: () => import("./pages/system.js") },
  { id: "board", label: "Station board", roles: ["rider", "operator", "admin"], load: () => import("./pages/board.js") },
  { id: "alerts", label: "Alerts", roles: ["admin"], load: () => import("./pages/alerts.js") },
  { id: "cards", label: "Cards", roles: ["rider", "operator", "admin"], load: () => import("./pages/cards.js") },
  { id: "rail", label: "Rail", roles: ["rider", "operator", "admin"], load: () => import("./pages/rail.js") },
];

const main = document.getElementById("main");
let me = null;
let unmount = null;
let generation = 0;

function allowed(page) {
  return me && page.roles.includes(me.role);
}

function renderNav(current) {
  const list = document.getElementById("nav-list");
  clear(list, PAGES.filter(allowed).map((p) =>
    h("li", h("a", { href: "#/" + p.id, "aria-current": p.id === current ? "page" : null }, p.label))));
}

async function route() {
  const gen = ++generation;
  if (unmount) {
    try { unmount(); } catch (e) { console.warn("unmount", e); }
    unmount = null;
  }
  if (!api.signedIn()) {
    showSignIn();
    return;
  }
  const [, id = "", arg = ""] = (location.hash.match(/^#\/([\w-]*)\/?(.*)$/) || []);
  const page = PAGES.find((p) => p.id === id && allowed(p)) || PAGES.find(allowed);
  if (page.id !== id) {
    history.replaceState(null, "", "#/" + page.id);
  }
  renderNav(page.id);
  document.title = page.label + " · transitd console";
  clear(main, h("p.muted", "Loading…"));
  const mod = await page.load();
  if (gen !== generation) return;
  clear(main);
  const ctx = { api, me, toast, navigate: (hash) => { location.hash = hash; } };
  unmount = mod.mount(main, ctx, decodeURIComponent(arg)) || null;
  // Move focus to the page's heading so keyboard and screen-reader users start there.
  const h1 = main.querySelector("h1");
  if (h1) h1.focus();
}

function showSignIn(message) {
  me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  document.title = "Sign in · transitd console";
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const status = h("p", { role: "alert", class: message ? "error" : null }, message || "");
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form.panel.signin", {
    "aria-labelledby": "signin-title",
    onsubmit: async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      status.textContent = "";
      try {
        me = await api.signIn(email.value.trim(), password.value);
        signedIn();
      } catch (e) {
        status.className = "error";
        status.textContent = e.status === 401 ? "The email or the password is not right." : problemText(e);
        submit.disabled = false;
        password.focus();
      }
    },
  },
  h("h1#signin-title", { tabindex: "-1" }, "Sign in"),
  h("p.lead", "The operator console of transitd. Pages adapt to your role."),
  field("Email", email),
  field("Password", password),
  status,
  submit,
  h("p.accounts", "Local demo accounts: admin@transitd.local, operator@transitd.local, rider@transitd.local (see the README)."));
  clear(main, form);
  email.focus();
}

function signedIn() {
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  document.getElementById("who-name").textContent = `${me.first_name || me.email} · ${me.role}`;
  if (!location.hash || location.hash === "#/") location.hash = "#/overview";
  else route();
}

document.getElementById("sign-out").addEventListener("click", async () => {
  await api.signOut();
  if (unmount) unmount();
  unmount = null;
  toast("Signed out.");
  showSignIn();
});

api.onSessionEnded((reason) => {
  if (unmount) unmount();
  unmount = null;
  showSignIn(reason);
});

window.addEventListener("hashchange", route);
showSignIn();
