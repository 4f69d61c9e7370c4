// api.js - the console's REST client (CONTRACT.md §4): it keeps the
// session's tokens, sends the access token as a Bearer header, and on a 401
// refreshes once and retries the request once. Refreshes are serialized:
// at most one is in flight, and requests that failed with the token it
// replaces wait for it instead of starting their own (two refreshes with
// one refresh token would look like token theft, §4.7, and end the session).
// A refresh that fails ends the session; listeners then show the login
// page with the API's reason.
//
// Tokens live in sessionStorage: one session per browser tab, kept across
// reloads, gone with the tab. Errors are ApiError objects carrying the
// status, the API's `detail` (text, or the 422 list) and the request id.

const STORE = 'cc.console.session';

export class ApiError extends Error {
  constructor(status, detail, requestId, method, path) {
    super(typeof detail === 'string' ? detail : 'Validation error');
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.requestId = requestId || null;
    this.method = method;
    this.path = path;
  }
}

/** The text a person should read for an error: the API's detail, each
 * field of a 422 ("bet_amount: Input should be ..."), and for a 5xx the
 * request id that finds the traceback in the server log. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  let text;
  if (Array.isArray(err.detail)) {
    text = err.detail.map((d) => {
      const loc = Array.isArray(d.loc) ? d.loc.filter((x) => x !== 'body' && x !== 'query').join('.') : '';
      return loc ? `${loc}: ${d.msg}` : d.msg;
    }).join('; ');
  } else {
    text = err.detail || `HTTP ${err.status}`;
  }
  if (err.status >= 500) text += ` (HTTP ${err.status}, request id ${err.requestId || 'unknown'})`;
  return text;
}

let session = load();
let refreshing = null;
const listeners = new Set();

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE)) || null;
  } catch {
    return null;
  }
}

function save() {
  if (session) sessionStorage.setItem(STORE, JSON.stringify(session));
  else sessionStorage.removeItem(STORE);
  for (const fn of listeners) fn(session);
}

/** The current session {access_token, refresh_token, user} or null. */
export function getSession() {
  return session;
}

/** Calls fn(session) whenever the session starts, refreshes or ends
 * (null, with the reason as the second argument). Returns an unsubscribe. */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Ends the session locally (no request) with a reason for the login page. */
export function endSession(reason) {
  if (!session) return;
  session = null;
  refreshing = null;
  sessionStorage.removeItem(STORE);
  for (const fn of listeners) fn(null, reason);
}

/** Updates the stored user (after a profile read). */
export function setUser(user) {
  if (!session) return;
  session = { ...session, user: { ...session.user, ...user } };
  save();
}

function url(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function send(method, path, opts, token) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(url(path, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'The server could not be reached (network error)', null, method, path);
  }
}

async function parse(res, method, path) {
  const text = res.status === 204 ? '' : await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { detail: text.slice(0, 200) };
    }
  }
  if (res.ok) return body;
  const detail = body && body.detail !== undefined ? body.detail : res.statusText;
  const id = (body && body.request_id) || res.headers.get('X-Request-Id');
  throw new ApiError(res.status, detail, id, method, path);
}

async function doRefresh() {
  const current = session;
  if (!current) throw new ApiError(401, 'Not logged in');
  const res = await send('POST', '/api/auth/refresh', { body: { refresh_token: current.refresh_token } });
  try {
    const body = await parse(res, 'POST', '/api/auth/refresh');
    if (session === current) {
      session = { ...current, access_token: body.access_token, refresh_token: body.refresh_token, user: body.user };
      save();
    }
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) endSession(describeError(e));
    throw e;
  }
}

/** Refreshes the tokens unless someone already replaced staleToken; at most
 * one refresh runs at a time and concurrent callers share it. */
export function refresh(staleToken) {
  if (session && staleToken && session.access_token !== staleToken) return Promise.resolve();
  if (!refreshing) refreshing = doRefresh().finally(() => { refreshing = null; });
  return refreshing;
}

/** Sends a request. opts: body, query, headers, auth (default true).
 * Resolves with the parsed JSON body (null for 204), rejects with ApiError. */
export async function request(method, path, opts = {}) {
  const auth = opts.auth !== false;
  if (auth && refreshing) await refreshing.catch(() => {});
  const token = auth ? session && session.access_token : null;
  if (auth && !token) throw new ApiError(401, 'Not logged in', null, method, path);
  let res = await send(method, path, opts, token);
  if (res.status === 401 && auth && session) {
    await refresh(token);
    if (!session) return parse(res, method, path);
    res = await send(method, path, opts, session.access_token);
    if (res.status === 401) {
      try {
        await parse(res, method, path);
      } catch (e) {
        endSession(describeError(e));
        throw e;
      }
    }
  }
  return parse(res, method, path);
}

export const get = (path, query) => request('GET', path, { query });
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
export const put = (path, body, opts = {}) => request('PUT', path, { ...opts, body });
export const patch = (path, body, opts = {}) => request('PATCH', path, { ...opts, body });
export const del = (path, opts = {}) => request('DELETE', path, opts);

/** Logs in (admin: the admin login) or signs up; starts the session. */
export async function login(siteId, password, admin = false) {
  const body = await request('POST', admin ? '/api/auth/admin/login' : '/api/auth/login', {
    auth: false, body: { site_id: siteId, password },
  });
  session = { access_token: body.access_token, refresh_token: body.refresh_token, user: body.user };
  save();
  return session;
}

export async function signup(fields) {
  const body = await request('POST', '/api/auth/signup', { auth: false, body: fields });
  session = { access_token: body.access_token, refresh_token: body.refresh_token, user: body.user };
  save();
  return session;
}

/** Ends the session here, then on the server (this session and its
 * refresh family; the answer is always 200). In this order, the socket's
 * 4401 that the logout causes finds no session left to report as ended. */
export async function logout() {
  const s = session;
  if (!s) return;
  endSession('You logged out.');
  try {
    await send('POST', '/api/auth/logout', { body: { refresh_token: s.refresh_token } }, s.access_token);
  } catch {
    // Offline: the tokens are dropped here all the same.
  }
}
