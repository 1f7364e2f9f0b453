// A key's page: every field, its usage, its audit trail, and (for admins)
// edit, rotate and revoke.

import { api, query, newView, stale } from "./api.js";
import { h, fill, field, when, errorBox, secretPanel, onSubmit } from "./dom.js";
import { describe, editControls, patchBody } from "./fields.js";
import { usageChart } from "./chart.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_GRACE = 7 * 24 * 3600;

/** `once` carries a secret just created or rotated: shown on this render only. */
export async function renderKey(main, nav, s, id, once = {}, v = newView()) {
  const secret = once.secret ? secretPanel(once.title, once.secret, once.extra) : null;
  // An id that cannot exist is not worth a request (or a 404 in the log).
  if (!UUID.test(id)) {
    fill(main, h("h1", {}, "No such key"), h("p", {}, h("a", { href: "/console", "data-nav": "" }, "Back to the keys")));
    return;
  }
  fill(main, secret, h("p", {}, "Loading the key…"));
  let key;
  try {
    key = await api("GET", `/v1/api-keys/${id}`);
  } catch (err) {
    if (stale(v)) return;
    // A secret just created or rotated is shown whatever else failed: it
    // cannot be shown again.
    fill(main, secret, h("h1", {}, err.status === 404 ? "No such key" : "The key could not be loaded"), errorBox(err));
    return;
  }
  if (stale(v)) return;
  const again = (next) => renderKey(main, nav, s, id, next);
  const rows = [
    ...describe(key),
    ["Created at", when(key.created_at)],
    ["Updated at", when(key.updated_at)],
    ["Last used at", when(key.last_used_at)],
    ["Revoked at", key.revoked_at ? when(key.revoked_at) : "not revoked"],
    ["Previous secret expires at", key.previous_secret_expires_at ? when(key.previous_secret_expires_at) : "no previous secret"],
  ];
  const usage = h("div", { "aria-live": "polite" }, "Loading usage…");
  const audit = h("div", {}, "Loading the audit trail…");
  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "/console", "data-nav": "" }, "API keys")),
    secret,
    once.notice ? h("p", { class: "notice", role: "status" }, once.notice) : null,
    h("div", { class: "title-row" }, h("h1", {}, key.name), h("span", { class: `status ${key.status}` }, key.status)),
    h("dl", { class: "fields" }, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h(
      "section",
      { "aria-labelledby": "usage-title" },
      h("div", { class: "title-row" }, h("h2", { id: "usage-title" }, "Usage"), granularity(usage, id)),
      usage,
    ),
    s.canWrite && key.status !== "revoked" ? actions(key, again) : null,
    h("section", { "aria-labelledby": "audit-title" }, h("h2", { id: "audit-title" }, "Audit trail"), audit),
  );
  if (once.secret) main.querySelector("[data-secret]")?.focus();
  await Promise.all([loadUsage(usage, id, "hour"), loadAudit(audit, id, v)]);
}

function granularity(target, id) {
  const pick = (g) => () => loadUsage(target, id, g);
  return h(
    "div",
    { class: "toggle", role: "group", "aria-label": "Usage period" },
    h("button", { type: "button", onclick: pick("hour") }, "Last 24 hours"),
    h("button", { type: "button", onclick: pick("day") }, "Last 30 days"),
  );
}

/** The chart; of overlapping requests (quick clicks), the last one wins. */
async function loadUsage(target, id, g) {
  const n = String(Number(target.dataset.request || 0) + 1);
  target.dataset.request = n;
  let content;
  try {
    content = usageChart(await api("GET", `/v1/api-keys/${id}/usage${query({ granularity: g })}`));
  } catch (err) {
    content = errorBox(err);
  }
  if (target.dataset.request === n) fill(target, content);
}

async function loadAudit(target, id, v) {
  let page;
  try {
    page = await api("GET", `/v1/audit-events${query({ api_key_id: id, limit: 50 })}`);
  } catch (err) {
    if (!stale(v)) fill(target, errorBox(err));
    return;
  }
  if (stale(v)) return;
  if (!page.data.length) {
    fill(target, h("p", {}, "No events."));
    return;
  }
  const head = ["When", "Action", "Actor", "IP", "Request"];
  fill(
    target,
    h(
      "table",
      { class: "audit" },
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        page.data.map((e) =>
          h(
            "tr",
            {},
            h("td", { "data-label": "When" }, when(e.occurred_at)),
            h("td", { "data-label": "Action" }, h("code", { "data-action": "" }, e.action)),
            h("td", { "data-label": "Actor" }, e.actor),
            h("td", { "data-label": "IP" }, e.ip || ""),
            h("td", { "data-label": "Request" }, h("code", {}, e.request_id || "")),
          ),
        ),
      ),
    ),
    page.next_cursor ? h("p", {}, "The 50 most recent events.") : null,
  );
}

/** Edit, rotate and revoke: shown to admins only, and not on a revoked key. */
function actions(key, again) {
  const id = key.id;
  const editProblems = h("div", { "aria-live": "assertive" });
  const edit = h(
    "form",
    {
      class: "key-form",
      onsubmit: onSubmit(editProblems, async () => {
        const body = patchBody(edit);
        if (!Object.keys(body).length) {
          fill(editProblems, h("p", { class: "notice", role: "status" }, "Nothing changed."));
          return;
        }
        await api("PATCH", `/v1/api-keys/${id}`, body);
        await again({ notice: "Saved." });
      }),
    },
    editControls(key),
    editProblems,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save")),
  );

  const rotateProblems = h("div", { "aria-live": "assertive" });
  const grace = h("input", { name: "grace_period_seconds", type: "number", min: 0, max: MAX_GRACE, value: "0" });
  const rotate = h(
    "form",
    {
      class: "inline-form",
      onsubmit: onSubmit(rotateProblems, async () => {
        const body = { grace_period_seconds: Number(grace.value || "0") };
        const r = await api("POST", `/v1/api-keys/${id}/rotate`, body);
        const extra = r.previous_secret_expires_at
          ? h("p", {}, `The previous secret keeps working until ${when(r.previous_secret_expires_at)}.`)
          : h("p", {}, "The previous secret stopped working.");
        await again({ secret: r.api_secret, title: "Secret rotated", extra });
      }),
    },
    field("Grace period (seconds)", grace, "How long the current secret keeps working, at most 7 days (604800)."),
    h("button", { type: "submit" }, "Rotate"),
  );

  const revokeProblems = h("div", { "aria-live": "assertive" });
  const dialog = h(
    "dialog",
    { "aria-labelledby": "revoke-title" },
    h("h2", { id: "revoke-title" }, `Revoke ${key.name}?`),
    h("p", {}, "Exchanges with this key fail at once and its tokens stop passing introspection. This cannot be undone."),
    h(
      "form",
      {
        method: "dialog",
        onsubmit: async (e) => {
          e.preventDefault();
          if (e.submitter?.value !== "revoke") {
            dialog.close();
            return;
          }
          try {
            await api("DELETE", `/v1/api-keys/${id}`);
            dialog.close();
            await again({ notice: "Revoked." });
          } catch (err) {
            dialog.close();
            fill(revokeProblems, errorBox(err));
          }
        },
      },
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", value: "cancel", autofocus: true }, "Cancel"),
        h("button", { type: "submit", value: "revoke", class: "danger" }, "Revoke"),
      ),
    ),
  );

  return h(
    "section",
    { "aria-labelledby": "manage-title", class: "manage" },
    h("h2", { id: "manage-title" }, "Manage"),
    h("details", {}, h("summary", {}, "Edit"), edit),
    h("h3", {}, "Rotate the secret"),
    rotate,
    rotateProblems,
    h("h3", {}, "Revoke"),
    h(
      "p",
      {},
      h("button", { type: "button", class: "danger", onclick: () => dialog.showModal() }, "Revoke"),
    ),
    revokeProblems,
    dialog,
  );
}
