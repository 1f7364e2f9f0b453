// The keys list (filters in the URL, keyset paging) and the create page.

import { api, query, newView, stale } from "./api.js";
import { h, fill, field, when, errorBox, onSubmit } from "./dom.js";
import { createBody, createControls } from "./fields.js";

const PAGE = 25;

function select(name, label, options, value) {
  return field(
    label,
    h(
      "select",
      { name, id: `filter-${name}` },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o, selected: o === value }, o)),
    ),
  );
}

/** The keys list. `cursors` are the pages before this one, for "Previous". */
export async function renderList(main, nav, s, cursors = []) {
  const v = newView();
  const params = new URLSearchParams(location.search);
  const filters = {
    status: params.get("status") || "",
    environment: params.get("environment") || "",
    name: params.get("name") || "",
  };
  const cursor = cursors[cursors.length - 1];
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (e) => {
        e.preventDefault();
        const f = e.target.elements;
        nav(`/console${query({ status: f.status.value, environment: f.environment.value, name: f.name.value.trim() })}`);
      },
    },
    select("status", "Status", ["active", "expired", "revoked"], filters.status),
    select("environment", "Environment", ["live", "test"], filters.environment),
    field("Name contains", h("input", { name: "name", type: "search", value: filters.name, autocomplete: "off" })),
    h("button", { type: "submit" }, "Filter"),
  );
  const body = h("div", { class: "list-body", "aria-live": "polite" }, h("p", {}, "Loading keys…"));
  fill(
    main,
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, "API keys"),
      s.canWrite ? h("a", { href: "/console/new", class: "button", "data-nav": "" }, "Create key") : null,
    ),
    form,
    body,
  );

  let page;
  try {
    page = await api("GET", `/v1/api-keys${query({ ...filters, limit: PAGE, cursor })}`);
  } catch (err) {
    if (!stale(v)) fill(body, errorBox(err));
    return;
  }
  if (stale(v)) return;
  const rows = page.data.map((k) =>
    h(
      "tr",
      {},
      h("td", { "data-label": "Name" }, h("a", { href: `/console/keys/${encodeURIComponent(k.id)}`, "data-nav": "" }, k.name)),
      h("td", { "data-label": "API key" }, h("code", {}, k.api_key)),
      h("td", { "data-label": "Environment" }, k.environment),
      h("td", { "data-label": "Status" }, h("span", { class: `status ${k.status}` }, k.status)),
      h("td", { "data-label": "Last used" }, when(k.last_used_at)),
    ),
  );
  const again = (stack) => renderList(main, nav, s, stack);
  fill(
    body,
    rows.length
      ? h(
          "table",
          { class: "keys" },
          h(
            "thead",
            {},
            h("tr", {}, ["Name", "API key", "Environment", "Status", "Last used"].map((t) => h("th", { scope: "col" }, t))),
          ),
          h("tbody", {}, rows),
        )
      : h("p", {}, "No keys match."),
    h(
      "div",
      { class: "pager" },
      cursors.length ? h("button", { type: "button", onclick: () => again(cursors.slice(0, -1)) }, "Previous page") : null,
      page.next_cursor ? h("button", { type: "button", onclick: () => again([...cursors, page.next_cursor]) }, "Next page") : null,
    ),
  );
}

/** The create page; on success, the new key's page with its secret. */
export function renderCreate(main, nav, s) {
  newView();
  if (!s.canWrite) {
    fill(main, h("h1", {}, "Create key"), h("p", {}, "This key is read-only: it cannot create keys."));
    return;
  }
  const problems = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {
      class: "key-form",
      onsubmit: onSubmit(problems, async () => {
        const created = await api("POST", "/v1/api-keys", createBody(form));
        nav(`/console/keys/${encodeURIComponent(created.id)}`, { secret: created.api_secret, title: "Key created" });
      }),
    },
    createControls(),
    problems,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create key"), h("a", { href: "/console", "data-nav": "" }, "Cancel")),
  );
  fill(main, h("h1", {}, "Create key"), form);
  form.elements.name.focus();
}
