// The console is a client of the admin API like any other: it exchanges the
// admin's key pair at /auth/token and sends the token as a bearer. The token
// lives in sessionStorage (gone with the tab, cleared on sign-out), never in
// a URL or localStorage; the secret is never stored at all.

const STORE = "tokenmint.console.session";
const ADMIN = "tokenmint:admin";
const READ = "tokenmint:keys:read";

let expiryTimer = null;
let onEnd = () => {};
let view = 0;

/** Starts a new page; answers that arrive for an older one are dropped. */
export function newView() {
  return ++view;
}

/** Whether the page that asked (`v`) has been replaced since. */
export function stale(v) {
  return v !== view;
}

/** An answer that is not 2xx, with the problem document's fields. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || `The server answered ${status}`;
    this.detail = problem.detail || problem.error_description || "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

/** Called with a reason whenever the session ends by itself (expiry, 401). */
export function onSessionEnd(fn) {
  onEnd = fn;
}

/** The current session, or null: {token, expiresAt, canWrite, apiKey}. */
export function session() {
  let s;
  try {
    s = JSON.parse(sessionStorage.getItem(STORE) || "null");
  } catch {
    s = null;
  }
  if (!s || typeof s.token !== "string" || !(s.expiresAt > Date.now())) {
    if (s) sessionStorage.removeItem(STORE);
    return null;
  }
  armExpiry(s);
  return s;
}

function armExpiry(s) {
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(() => end("Your session expired. Sign in again."), s.expiresAt - Date.now());
}

function end(reason) {
  signOut();
  newView();
  onEnd(reason);
}

/** Exchanges the pair; refuses a key that can neither read nor administer keys. */
export async function signIn(apiKey, apiSecret) {
  const res = await fetch("/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ api_key: apiKey, api_secret: apiSecret }),
    credentials: "omit",
    cache: "no-store",
  });
  const body = await readJson(res);
  if (!res.ok) {
    const detail = res.status === 429 ? "Too many attempts; wait a minute and try again." : body.error_description;
    throw new ApiError(res.status, { title: "Sign-in failed", detail: detail || body.error || "" });
  }
  const scopes = String(body.scope || "").split(" ");
  const canWrite = scopes.includes(ADMIN);
  if (!canWrite && !scopes.includes(READ)) {
    throw new ApiError(403, {
      title: "This key cannot use the console",
      detail: `Its token has neither ${ADMIN} nor ${READ} in its scope.`,
    });
  }
  const s = {
    token: body.access_token,
    // A few seconds early, so no request leaves with a token about to lapse.
    expiresAt: Date.now() + Math.max(0, Number(body.expires_in) - 5) * 1000,
    canWrite,
    apiKey,
  };
  sessionStorage.setItem(STORE, JSON.stringify(s));
  armExpiry(s);
  return s;
}

export function signOut() {
  clearTimeout(expiryTimer);
  sessionStorage.removeItem(STORE);
}

async function readJson(res) {
  const text = await res.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { title: `The server answered ${res.status}`, detail: text.slice(0, 200) };
  }
}

/** One admin API call; resolves to the JSON body, rejects with ApiError. */
export async function api(method, path, body) {
  const s = session();
  if (!s) {
    end("Your session ended. Sign in again.");
    throw new ApiError(401, { title: "Not signed in" });
  }
  const headers = { authorization: `Bearer ${s.token}`, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const json = await readJson(res);
  if (res.status === 401) end("Your session is no longer valid. Sign in again.");
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** A query string from the non-empty members of an object. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
