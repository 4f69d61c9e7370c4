// main.js - the console's shell: the session, the hash router, the header
// with balances, live status and unread count, the navigation, toasts, and
// the live socket's messages. Views live in player/ and admin/.
import { html, render, useEffect, useState, useRef, fmt } from './ui.js';
import * as api from './api.js';
import { startLive } from './live.js';
import { useStore, setState, toast, loadBalances } from './store.js';
import { LoginView } from './player/auth.js';
import { SlotView, RpsView, GachaView } from './player/games.js';
import { CrashView } from './player/crash.js';
import { EngageView } from './player/engage.js';
import { InboxView } from './player/inbox.js';
import { FairnessView } from './player/fairness.js';
import { StatsView, ScriptsView } from './admin/overview.js';
import { UsersView, UserDetailView } from './admin/users.js';
import { AdminEventsView, AdminMissionsView } from './admin/content.js';
import { NotifyView } from './admin/notify.js';
import { AuditView, CrashSessionsView } from './admin/logs.js';
import { RtpView } from './admin/rtp.js';

const PLAYER = [
  ['slot', 'Slot', SlotView],
  ['rps', 'RPS', RpsView],
  ['gacha', 'Gacha', GachaView],
  ['crash', 'Crash', CrashView],
  ['missions', 'Missions & events', EngageView],
  ['inbox', 'Notifications', InboxView],
  ['fairness', 'Fairness', FairnessView],
];
const ADMIN = [
  ['admin', 'Stats', StatsView],
  ['admin/users', 'Users', UsersView],
  ['admin/events', 'Events', AdminEventsView],
  ['admin/missions', 'Missions', AdminMissionsView],
  ['admin/notify', 'Notify', NotifyView],
  ['admin/audit', 'Audit log', AuditView],
  ['admin/crash', 'Crash rounds', CrashSessionsView],
  ['admin/scripts', 'Scripts', ScriptsView],
  ['admin/rtp', 'RTP report', RtpView],
];

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  return { path: path || '', query: new URLSearchParams(query || '') };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const fn = () => setRoute(parseHash());
    window.addEventListener('hashchange', fn);
    return () => window.removeEventListener('hashchange', fn);
  }, []);
  return route;
}

async function loadUnread() {
  try {
    const n = await api.get('/api/notifications', { limit: 1 });
    setState({ unread: n.unread_count });
  } catch {
    // as above
  }
}

function onLive(msg) {
  const payload = msg.payload || {};
  const text = msg.type === 'REWARD_RECEIVED'
    ? `Reward received: ${fmt.n(payload.amount)} ${payload.reward_type || ''}`
    : `${msg.type === 'ADMIN_BROADCAST' ? 'Broadcast' : 'Message'}: ${payload.title || ''}`;
  setState((s) => ({
    feed: [{ ...msg, received_at: new Date().toISOString() }, ...s.feed].slice(0, 50),
    unread: msg.type === 'ADMIN_BROADCAST' ? s.unread : s.unread + 1,
  }));
  toast(text);
  if (msg.type === 'REWARD_RECEIVED') loadBalances();
}

/** The session's reason for ending, shown on the login page. */
let endReason = '';

function Header({ session }) {
  const st = useStore();
  const b = st.balances || {};
  const liveText = {
    idle: 'off', connecting: 'connecting…', open: 'connected', retrying: st.live.detail,
    replaced: 'paused (another tab)', closed: st.live.detail,
  }[st.live.status] || st.live.status;
  return html`<header class="top">
    <div class="brand"><a href="#/slot">Casino-Club console</a></div>
    <div class="who">
      <span class="nick" data-testid="nickname">${session.user.nickname}</span>
      <span class="rank">${session.user.rank}${session.user.is_admin ? ' · admin' : ''}</span>
    </div>
    <dl class="balances" aria-label="Balances">
      <div><dt>Tokens</dt><dd data-testid="balance-tokens">${fmt.n(b.tokens)}</dd></div>
      <div><dt>Gold</dt><dd>${fmt.n(b.gold)}</dd></div>
      <div><dt>Gems</dt><dd>${fmt.n(b.gems)}</dd></div>
      <div><dt>EXP</dt><dd>${fmt.n(b.exp)}</dd></div>
    </dl>
    <p class=${`live live-${st.live.status}`} data-testid="live-status">Live: ${liveText}</p>
    <a class="unread" href="#/inbox" aria-label=${`Notifications, ${st.unread} unread`}>
      Inbox <span class="badge" data-testid="unread">${st.unread}</span></a>
    <button type="button" class="secondary" onClick=${() => api.logout()}>Log out</button>
  </header>`;
}

function Nav({ current, admin }) {
  const link = ([path, label]) => html`<li><a href=${`#/${path}`}
    aria-current=${current === path ? 'page' : undefined}>${label}</a></li>`;
  return html`<div class="navs">
    <nav aria-label="Player"><ul>${PLAYER.map(link)}</ul></nav>
    ${admin && html`<nav aria-label="Admin"><ul>${ADMIN.map(link)}</ul></nav>`}
  </div>`;
}

function Toasts() {
  const st = useStore();
  return html`<div class="toasts" role="status" aria-live="polite" data-testid="toasts">
    ${st.toasts.map((t) => html`<p class=${`toast toast-${t.kind}`} key=${t.id}>${t.text}</p>`)}
  </div>`;
}

function App() {
  const [session, setSession] = useState(api.getSession());
  const route = useRoute();
  const mainRef = useRef(null);

  useEffect(() => api.onSession((s, reason) => {
    if (!s) {
      endReason = reason || '';
      setState({ balances: null, feed: [], unread: 0 });
    }
    setSession(s);
  }), []);

  // The live socket and the header figures follow the session's user.
  const userId = session && session.user.id;
  useEffect(() => {
    if (!userId) return undefined;
    loadBalances();
    loadUnread();
    const live = startLive({
      message: onLive,
      status: (status, detail) => setState({ live: { status, detail } }),
      ended: async (code) => {
        // The server closed the socket because the session ended. Ask the
        // API why (one request, no refresh: the session is gone either way).
        const s = api.getSession();
        if (!s) return; // logged out here: nothing to explain
        let why = 'Your session ended';
        try {
          const res = await fetch('/api/auth/me', { headers: { Authorization: `Bearer ${s.access_token}` } });
          const body = await res.json();
          if (!res.ok && body && typeof body.detail === 'string') why += `: ${body.detail}`;
        } catch {
          // offline: the code alone tells it
        }
        api.endSession(`${why} (the live socket closed with ${code}). Please log in again.`);
      },
    });
    return () => live.stop();
  }, [userId]);

  // Move focus to the new view's heading, so keyboard and screen-reader
  // users land on what changed.
  useEffect(() => {
    const h = mainRef.current && mainRef.current.querySelector('h1');
    if (h) {
      h.setAttribute('tabindex', '-1');
      h.focus({ preventScroll: false });
    }
  }, [route.path, !!session]);

  if (!session) {
    return html`<main id="main" ref=${mainRef}><${LoginView} reason=${endReason} /></main><${Toasts} />`;
  }
  const admin = !!session.user.is_admin;
  let path = route.path;
  let View = null;
  let params = {};
  const m = path.match(/^admin\/users\/(\d+)$/);
  if (m && admin) {
    View = UserDetailView;
    params = { id: Number(m[1]) };
  } else {
    const found = PLAYER.concat(admin ? ADMIN : []).find(([p]) => p === path);
    if (found) View = found[2];
    else {
      path = admin && path.startsWith('admin') ? 'admin' : 'slot';
      View = (PLAYER.concat(ADMIN).find(([p]) => p === path))[2];
    }
  }
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); mainRef.current.focus(); }}>Skip to content</a>
    <${Header} session=${session} />
    <${Nav} current=${path} admin=${admin} />
    <main id="main" tabindex="-1" ref=${mainRef}>
      <${View} key=${route.path} session=${session} query=${route.query} ...${params} />
    </main>
    <${Toasts} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
