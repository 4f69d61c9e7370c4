// inbox.js - notifications (CONTRACT.md §14): what arrived live over the
// socket on this page (broadcasts included, which the inbox does not
// list), and the inbox of targeted notifications with its unread count,
// read and read-all.
import { html, useState, ErrorBox, useAction, useLoad, fmt, Pager } from '../ui.js';
import * as api from '../api.js';
import { useStore, setState } from '../store.js';

const PAGE = 20;

function LiveFeed() {
  const st = useStore();
  return html`<section class="card" aria-labelledby="live-h">
    <h2 id="live-h">Live on this page</h2>
    <p class="muted">Socket: ${st.live.status}${st.live.detail ? ` (${st.live.detail})` : ''}.</p>
    ${st.feed.length === 0 ? html`<p class="muted">Nothing yet. Messages appear here as they arrive.</p>`
      : html`<ul class="feed" data-testid="live-feed">${st.feed.map((m) => html`<li key=${`${m.type}-${m.id}`}>
        <span class="pill">${m.type}</span>
        ${m.type === 'REWARD_RECEIVED'
          ? html` <strong>${fmt.n(m.payload.amount)} ${m.payload.reward_type}</strong> ${m.payload.source || ''}`
          : html` <strong>${m.payload.title}</strong> ${m.payload.body}`}
        <small class="muted"> ${fmt.time(m.created_at)}</small></li>`)}</ul>`}
  </section>`;
}

export function InboxView() {
  const st = useStore();
  const [page, setPage] = useState(1);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [version, setVersion] = useState(0);
  const inbox = useLoad(async () => {
    const d = await api.get('/api/notifications', { limit: PAGE, offset: (page - 1) * PAGE, unread_only: unreadOnly || undefined });
    setState({ unread: d.unread_count });
    return d;
  }, [page, unreadOnly, version, st.feed.length]);
  const { busy, error, run } = useAction();
  const readOne = (id) => run(async () => { await api.post(`/api/notifications/${id}/read`); setVersion((v) => v + 1); });
  const readAll = () => run(async () => { await api.post('/api/notifications/read-all'); setVersion((v) => v + 1); });
  const d = inbox.data;
  return html`<section>
    <h1>Notifications</h1>
    <${LiveFeed} />
    <section class="card" aria-labelledby="inbox-h">
      <h2 id="inbox-h">Inbox ${d && html`<span class="badge">${d.unread_count} unread</span>`}</h2>
      <div class="row">
        <label class="inline"><input type="checkbox" checked=${unreadOnly}
          onChange=${(e) => { setUnreadOnly(e.currentTarget.checked); setPage(1); }} /> Unread only</label>
        <button type="button" class="secondary" disabled=${busy || !d || d.unread_count === 0} onClick=${readAll}>Mark all read</button>
      </div>
      <${ErrorBox} error=${inbox.error || error} />
      ${d && d.items.length === 0 && html`<p class="muted">No notifications.</p>`}
      ${d && html`<ul class="feed">${d.items.map((n) => html`<li key=${n.id} class=${n.is_read ? 'read' : 'unread'}>
        <span class="pill">${n.type}</span> <strong>${n.title}</strong> ${n.body}
        <small class="muted"> ${fmt.time(n.created_at)}</small>
        ${!n.is_read && html` <button type="button" class="link" disabled=${busy} onClick=${() => readOne(n.id)}
          aria-label=${`Mark "${n.title}" read`}>Mark read</button>`}
      </li>`)}</ul>
      <${Pager} page=${page} pageSize=${PAGE} total=${d.total} onPage=${setPage} label="Inbox pages" />`}
    </section>
  </section>`;
}
