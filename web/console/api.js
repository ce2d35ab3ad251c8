// The API client. Tokens live in this module's variables only (never in
// storage): a reload signs the operator out. The access token is rotated
// through /auth/refresh before it expires; one rotation runs at a time,
// because presenting a rotated refresh token again revokes the whole login.

const V1 = "/api/v1";

let access = null;
let refreshToken = null;
let refreshTimer = null;
let rotating = null;
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
  }
}

/** Called with a reason when the session ends without the user asking. */
export function onSessionEnded(fn) {
  onSignedOut = fn;
}

export function signedIn() {
  return access !== null;
}

function keep(pair) {
  access = pair.access_token;
  refreshToken = pair.refresh_token;
  clearTimeout(refreshTimer);
  // Rotate at 80% of the lifetime, so a request never carries a dead token.
  const ms = Math.max(5, pair.expires_in * 0.8) * 1000;
  refreshTimer = setTimeout(() => rotate().catch(() => {}), ms);
}

function forget() {
  access = null;
  refreshToken = null;
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

async function parse(res) {
  const type = res.headers.get("Content-Type") || "";
  if (res.status === 204 || res.status === 304) return null;
  if (type.includes("json")) return res.json();
  return res.text();
}

async function send(method, path, { body, headers = {}, auth = true } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (auth && access) h.Authorization = "Bearer " + access;
  return fetch(path.startsWith("/") ? path : V1 + "/" + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
}

/** Rotates the token pair; a failure ends the session. */
export function rotate() {
  if (!rotating) {
    rotating = (async () => {
      if (!refreshToken) throw new ApiError(401, null);
      const res = await send("POST", "auth/refresh", { body: { refresh_token: refreshToken }, auth: false });
      const doc = await parse(res);
      if (!res.ok) {
        forget();
        onSignedOut("Your session has ended; please sign in again.");
        throw new ApiError(res.status, doc);
      }
      keep(doc);
    })().finally(() => {
      rotating = null;
    });
  }
  return rotating;
}

/**
 * Calls the API. path is under /api/v1 unless it starts with "/". Resolves
 * to the parsed body; rejects with ApiError (problem+json in .problem).
 * A 401 on a signed-in call rotates the token once and tries again.
 */
export async function call(method, path, options = {}) {
  if (rotating) await rotating.catch(() => {});
  let res = await send(method, path, options);
  if (res.status === 401 && options.auth !== false && refreshToken) {
    await rotate();
    res = await send(method, path, options);
  }
  const doc = await parse(res);
  if (!res.ok) throw new ApiError(res.status, typeof doc === "object" ? doc : null);
  return doc;
}

export const get = (path, options) => call("GET", path, options);
export const post = (path, body, options = {}) => call("POST", path, { ...options, body });
export const patch = (path, body, options = {}) => call("PATCH", path, { ...options, body });

/** Reads a public document that may answer 503 with a body (health checks). */
export async function probe(path) {
  try {
    const res = await send("GET", path, { auth: false });
    const doc = await parse(res);
    return { ok: res.ok, status: res.status, body: doc };
  } catch (e) {
    return { ok: false, status: 0, body: null, error: String(e) };
  }
}

export async function signIn(email, password) {
  const res = await send("POST", "auth/login", { body: { email, password }, auth: false });
  const doc = await parse(res);
  if (!res.ok) throw new ApiError(res.status, doc);
  keep(doc);
  return get("users/me");
}

export async function signOut() {
  if (access) {
    try {
      await call("POST", "auth/logout");
    } catch (e) {
      // the tokens are dropped here whatever the server said
    }
  }
  forget();
}

/** A fresh Idempotency-Key (random, without needing a secure context). */
export function idempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
