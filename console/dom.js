// Building the page. Every string goes in as text (textContent or an
// attribute value), never as HTML: names, metadata and claims come from
// whoever created the key.

/** An element: h("a", {href: "/x", onclick: fn}, "text", child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, for the usage chart. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces everything in `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control; `control` is an input, select or textarea. */
export function field(label, control, help) {
  const id = control.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  control.id = id;
  const hint = help ? h("small", { id: `${id}-help`, class: "help" }, help) : null;
  if (hint) control.setAttribute("aria-describedby", hint.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint);
}

/** A readable date and time, in the browser's zone; "never" for null. */
export function when(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** An API error (or any error) as a block the user can read. */
export function errorBox(err) {
  const items = (err.errors || []).map((e) => h("li", {}, h("code", {}, e.field), ": ", e.message));
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, err.title || "Something went wrong"),
    err.detail || (!err.title && err.message) ? h("p", {}, err.detail || err.message) : null,
    items.length ? h("ul", {}, items) : null,
  );
}

/** The one-time secret, with a copy button and the warning that goes with it. */
export function secretPanel(title, secret, extra) {
  const status = h("span", { class: "copied", role: "status" });
  const copy = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
          status.textContent = "Copied.";
        } catch {
          status.textContent = "Copy failed: select the secret and copy it by hand.";
        }
      },
    },
    "Copy",
  );
  const done = h(
    "button",
    {
      type: "button",
      onclick: () => {
        secret = "";
        panel.remove();
      },
    },
    "Done",
  );
  const panel = h(
    "section",
    { class: "secret", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title" }, title),
    h(
      "p",
      { class: "warning" },
      "Copy this secret now. It is shown once and cannot be shown again: tokenmint keeps only its hash.",
    ),
    h("div", { class: "secret-row" }, h("code", { "data-secret": "", tabindex: "0" }, secret), copy, status),
    extra,
    h("p", {}, done, " when it is stored safely."),
  );
  // Leaving the page (including into the back-forward cache) drops it.
  window.addEventListener("pagehide", () => panel.remove(), { once: true });
  return panel;
}

/** A form's submit handler: clears `problems`, disables the submit buttons
 *  while `action` runs, and shows what it throws in `problems`. */
export function onSubmit(problems, action) {
  return async (e) => {
    e.preventDefault();
    const buttons = [...e.target.querySelectorAll("button[type=submit]")];
    fill(problems);
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action(e);
    } catch (err) {
      fill(problems, errorBox(err));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  };
}
