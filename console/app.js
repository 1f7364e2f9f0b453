// The console's entry: sign-in, the header, and a small router over
// /console (keys), /console/new (create) and /console/keys/{id}.

import { session, signIn, signOut, onSessionEnd, newView } from "./api.js";
import { h, fill, field, onSubmit } from "./dom.js";
import { renderList, renderCreate } from "./list.js";
import { renderKey } from "./key.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const out = document.getElementById("sign-out");

/** Goes to a console URL without reloading; `once` is handed to that page only. */
function nav(url, once) {
  history.pushState({}, "", url);
  route(once);
}

function route(once) {
  const s = session();
  header(s);
  if (!s) {
    renderSignIn();
    return;
  }
  const path = location.pathname.replace(/\/+$/, "");
  const keyPage = path.match(/^\/console\/keys\/([^/]+)$/);
  if (keyPage) renderKey(main, nav, s, decoded(keyPage[1]), once);
  else if (path === "/console/new") renderCreate(main, nav, s);
  else renderList(main, nav, s);
  // A page that focused its first control keeps it; otherwise start at the content.
  if (!main.contains(document.activeElement)) main.focus();
}

/** A path segment, decoded; a malformed escape is just not an id. */
function decoded(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return "";
  }
}

function header(s) {
  out.hidden = !s;
  fill(who, s ? `${s.apiKey} · ${s.canWrite ? "admin" : "read-only"}` : "");
}

function renderSignIn(reason) {
  newView();
  const problems = h("div", { "aria-live": "assertive" });
  const key = h("input", { name: "api_key", autocomplete: "username", required: true, spellcheck: "false" });
  const secret = h("input", { name: "api_secret", type: "password", autocomplete: "off", required: true });
  const form = h(
    "form",
    {
      class: "sign-in",
      onsubmit: onSubmit(problems, async () => {
        await signIn(key.value.trim(), secret.value.trim());
        secret.value = "";
        route();
      }),
    },
    h("h1", {}, "Sign in"),
    h("p", {}, "With an admin key (tokenmint:admin) or a read-only one (tokenmint:keys:read)."),
    reason ? h("p", { class: "notice", role: "status" }, reason) : null,
    field("API key", key),
    field("API secret", secret),
    problems,
    h("button", { type: "submit" }, "Sign in"),
  );
  fill(main, form);
  key.focus();
}

// Links marked data-nav stay in the app (modified clicks open a new tab as usual).
document.addEventListener("click", (e) => {
  const a = e.target.closest?.("a[data-nav], a.brand");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  nav(a.getAttribute("href"));
});

out.addEventListener("click", () => {
  signOut();
  history.pushState({}, "", "/console");
  header(null);
  renderSignIn("Signed out.");
});

onSessionEnd((reason) => {
  header(null);
  renderSignIn(reason);
});

window.addEventListener("popstate", () => route());
route();
