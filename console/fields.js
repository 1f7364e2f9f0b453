// The fields of a key (SPEC §5) as form controls: how each is entered, shown
// back for editing, and turned into the JSON the admin API takes. The API
// validates everything; the console only parses what it must (numbers,
// JSON) and names the field when that fails, as the API would.

import { h, field } from "./dom.js";

const FIELDS = [
  { name: "name", label: "Name", kind: "text", max: 100, edit: true, required: true, help: "1–100 characters." },
  { name: "scopes", label: "Scopes", kind: "words", edit: true, help: "Separated by spaces, e.g. invoices:read invoices:write." },
  { name: "subject", label: "Subject", kind: "text", max: 255, help: "The tokens' sub. Empty: the key's id. Fixed once created." },
  { name: "environment", label: "Environment", kind: "select", options: ["live", "test"], help: "Fixed once created." },
  { name: "expires_at", label: "Expires at", kind: "datetime", edit: true, help: "Your local time. Empty: never." },
  { name: "allowed_ips", label: "Allowed IPs", kind: "list", edit: true, help: "Addresses or CIDRs, separated by commas or spaces. Empty: any." },
  { name: "rate_limit_per_minute", label: "Rate limit per minute", kind: "int", edit: true, help: "Empty: the server's default." },
  { name: "audiences", label: "Audiences", kind: "list", edit: true, help: "URIs this key may ask for. Empty: the default audience only." },
  { name: "token_ttl_seconds", label: "Token TTL seconds", kind: "int", edit: true, help: "Empty: the server's default (never more)." },
  { name: "claims", label: "Claims (JSON object)", kind: "json", edit: true, help: "Extra claims in every token, at most 2 KiB." },
  { name: "metadata", label: "Metadata (JSON object)", kind: "json", edit: true, help: "Yours; never put in tokens; at most 4 KiB." },
  { name: "require_dpop", label: "Require DPoP", kind: "bool", edit: true, help: "Refuse exchanges without a DPoP proof (RFC 9449)." },
];

/** A local check failed; shaped like the API's 422 so it is shown alike. */
export class FormError extends Error {
  constructor(errors) {
    super("invalid form");
    this.title = "Some fields are not valid";
    this.errors = errors;
  }
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** An ISO instant as the value of a datetime-local control, in local time. */
function toLocalInput(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function shown(f, value) {
  if (value === null || value === undefined) return "";
  switch (f.kind) {
    case "words":
      return value.join(" ");
    case "list":
      return value.join(", ");
    case "datetime":
      return toLocalInput(value);
    case "json":
      return Object.keys(value).length ? JSON.stringify(value, null, 2) : "";
    default:
      return String(value);
  }
}

function control(f, value) {
  if (f.kind === "bool") return h("input", { name: f.name, type: "checkbox", checked: value === true });
  const attrs = { name: f.name, value: shown(f, value) };
  if (f.kind === "select") {
    return h("select", { name: f.name }, f.options.map((o) => h("option", { value: o, selected: o === value }, o)));
  }
  if (f.kind === "json") return h("textarea", { ...attrs, rows: 3, spellcheck: "false" });
  const type = { int: "number", datetime: "datetime-local" }[f.kind] || "text";
  return h("input", {
    ...attrs,
    type,
    required: f.required,
    maxlength: f.max,
    min: f.kind === "int" ? 1 : undefined,
    autocomplete: "off",
    spellcheck: "false",
  });
}

/** What a control holds, as text (a checkbox: "true" or "false"). */
function raw(c) {
  return c.type === "checkbox" ? String(c.checked) : c.value;
}

/** The value to send, or undefined when the control is empty. */
function parse(f, raw, errors) {
  if (f.kind === "bool") return raw === "true" ? true : f.edit && raw === "false" ? false : undefined;
  const text = raw.trim();
  if (text === "") return undefined;
  switch (f.kind) {
    case "words":
      return text.split(/\s+/);
    case "list":
      return text.split(/[\s,]+/).filter(Boolean);
    case "int": {
      const n = Number(text);
      if (!Number.isInteger(n)) errors.push({ field: f.name, message: "must be a whole number" });
      return n;
    }
    case "datetime": {
      const d = new Date(text);
      if (Number.isNaN(d.getTime())) errors.push({ field: f.name, message: "must be a date and time" });
      else return d.toISOString();
      return undefined;
    }
    case "json": {
      let v;
      try {
        v = JSON.parse(text);
      } catch {
        errors.push({ field: f.name, message: "must be a JSON object" });
        return undefined;
      }
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        errors.push({ field: f.name, message: "must be a JSON object" });
      }
      return v;
    }
    default:
      return raw;
  }
}

/** What clearing a control means in a PATCH. */
function cleared(f) {
  return { words: [], list: [], json: {} }[f.kind] ?? null;
}

/** The create form's controls. */
export function createControls() {
  return FIELDS.map((f) => field(f.label, control(f, f.kind === "select" ? "live" : null), f.help));
}

/** The create request: every filled-in field. Throws FormError. */
export function createBody(form) {
  const body = {};
  const errors = [];
  for (const f of FIELDS) {
    const v = parse(f, raw(form.elements[f.name]), errors);
    if (v !== undefined && v !== false) body[f.name] = v;
  }
  if (errors.length) throw new FormError(errors);
  return body;
}

/** The edit form's controls, filled in from the key. */
export function editControls(key) {
  return FIELDS.filter((f) => f.edit).map((f) => {
    const c = control(f, key[f.name]);
    c.dataset.initial = raw(c);
    return field(f.label, c, f.help);
  });
}

/** The PATCH request: the fields whose control changed. Throws FormError. */
export function patchBody(form) {
  const body = {};
  const errors = [];
  for (const f of FIELDS.filter((f) => f.edit)) {
    const c = form.elements[f.name];
    if (raw(c) === c.dataset.initial) continue;
    const v = parse(f, raw(c), errors);
    body[f.name] = v === undefined ? cleared(f) : v;
  }
  if (errors.length) throw new FormError(errors);
  return body;
}

/** Every field of a key, for its page: [label, text] pairs. */
export function describe(key) {
  const rows = [
    ["ID", key.id],
    ["API key", key.api_key],
    ["Status", key.status],
  ];
  for (const f of FIELDS) {
    const v = key[f.name];
    let text;
    if (f.kind === "bool") text = v ? "yes" : "no";
    else if (v === null || v === undefined) text = f.kind === "datetime" ? "never" : "server default";
    else if (f.kind === "datetime") text = new Date(v).toLocaleString();
    else if (Array.isArray(v)) text = v.length ? v.join(f.kind === "words" ? " " : ", ") : f.name === "allowed_ips" ? "any" : "none";
    else if (typeof v === "object") text = Object.keys(v).length ? JSON.stringify(v, null, 2) : "none";
    else text = String(v);
    rows.push([f.label.replace(/ \(JSON object\)$/, ""), text]);
  }
  return rows;
}
