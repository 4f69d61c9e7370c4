// live.js - the notification socket (CONTRACT.md §14.2) with reconnect and
// backoff.
//
// The access token travels as the subprotocol "bearer, <token>", so it never
// appears in a URL. A browser cannot see why an upgrade was refused (a 401
// or 403 answer only shows as close code 1006), so before every reconnect
// the socket asks GET /api/auth/me through the REST client: that refreshes
// an expired access token, and a session that ended (ban, logout elsewhere)
// fails there with the API's reason instead of looping.
//
// Close codes: 4401 = the session ended (logout, ban, superseded login):
// the console returns to the login page; 4000 = more sockets than
// WS_MAX_SOCKETS_PER_USER, this one being the oldest: it stays closed
// (another tab has the live feed); 1000 = closed by us; anything else
// (1001 idle, 1006 network, a restart) reconnects after 1, 2, 4 ... 30 s
// with jitter, at once when the browser comes back online.
import { get, getSession } from './api.js';

const MAX_DELAY_MS = 30000;

/** Starts the socket of the session's user. handlers: message(msg),
 * status(status, detail), ended(reason). Returns {stop()}. */
export function startLive(handlers) {
  let ws = null;
  let attempt = 0;
  let timer = null;
  let stopped = false;
  let openedAt = 0;

  const status = (s, detail = '') => handlers.status(s, detail);

  function connect() {
    const s = getSession();
    if (stopped || !s) return;
    status('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/ws/notifications/${s.user.id}`, ['bearer', s.access_token]);
    ws = sock;
    sock.onopen = () => {
      openedAt = Date.now();
      status('open');
      sock.send(JSON.stringify({ type: 'ping', sent: Date.now() }));
    };
    sock.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg && msg.type !== 'pong') handlers.message(msg);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      if (stopped) return;
      if (ev.code === 4401) {
        stopped = true;
        status('closed', 'session ended (4401)');
        handlers.ended(ev.code);
        return;
      }
      if (ev.code === 4000) {
        status('replaced', 'another tab or device holds the live feed');
        return;
      }
      // A socket that stayed up a while starts the backoff afresh.
      if (Date.now() - openedAt > 10000) attempt = 0;
      schedule();
    };
  }

  function schedule() {
    const base = Math.min(MAX_DELAY_MS, 1000 * 2 ** attempt);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    attempt++;
    status('retrying', `reconnecting in ${Math.ceil(delay / 1000)} s`);
    clearTimeout(timer);
    timer = setTimeout(reconnect, delay);
  }

  async function reconnect() {
    timer = null;
    if (stopped) return;
    try {
      await get('/api/auth/me');
    } catch (e) {
      if (!getSession()) return; // the session ended: the login page takes over
      schedule(); // offline or 5xx: try again later
      return;
    }
    connect();
  }

  function online() {
    if (!stopped && !ws && timer) {
      clearTimeout(timer);
      reconnect();
    }
  }
  window.addEventListener('online', online);

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      window.removeEventListener('online', online);
      if (ws) {
        const sock = ws;
        ws = null;
        sock.close(1000);
      }
      status('idle');
    },
  };
}
