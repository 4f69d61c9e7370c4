// logs.js - the admin audit log and the crash rounds (CONTRACT.md §13.1,
// §13.6), with filters and paging.
import { html, useState, Field, Select, ErrorBox, Table, useLoad, fmt } from '../ui.js';
import * as api from '../api.js';

const LIMIT = 25;

export function AuditView() {
  const [f, setF] = useState({ admin_id: '', action: '', target_id: '' });
  const [filter, setFilter] = useState(f);
  const [offset, setOffset] = useState(0);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const audit = useLoad(() => api.get('/api/admin/audit', { ...filter, limit: LIMIT, offset }), [filter, offset]);
  const d = audit.data;
  return html`<section>
    <h1>Audit log</h1>
    <form class="inline-form" role="search" onSubmit=${(e) => { e.preventDefault(); setFilter(f); setOffset(0); }}>
      <${Field} label="Admin ID" name="audit_admin" type="number" min="1" value=${f.admin_id} onInput=${set('admin_id')} />
      <${Field} label="Action" name="audit_action" value=${f.action} onInput=${set('action')} placeholder="user.ban" />
      <${Field} label="Target ID" name="audit_target" value=${f.target_id} onInput=${set('target_id')} />
      <button type="submit">Filter</button>
    </form>
    <${ErrorBox} error=${audit.error} />
    ${d && html`<${Table} caption=${`${fmt.n(d.total)} entries, newest first`} head=${['ID', 'At', 'Admin', 'Action', 'Target', 'Payload', 'IP']}>
      ${d.items.map((a) => html`<tr key=${a.id}><td>${a.id}</td><td>${fmt.time(a.created_at)}</td><td>${a.admin_id ?? '–'}</td>
        <td>${a.action}</td><td>${a.target_type} ${a.target_id}</td><td class="mono small">${fmt.json(a.payload)}</td>
        <td>${a.ip_address || '–'}</td></tr>`)}
    </${Table}>
    <nav class="pager" aria-label="Audit pages">
      <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - LIMIT))}>Previous</button>
      <span>${d.total === 0 ? 'none' : `${offset + 1}–${Math.min(offset + LIMIT, d.total)} of ${d.total}`}</span>
      <button type="button" disabled=${offset + LIMIT >= d.total} onClick=${() => setOffset(offset + LIMIT)}>Next</button>
    </nav>`}
  </section>`;
}

export function CrashSessionsView() {
  const [f, setF] = useState({ user_id: '', status: '', limit: '50' });
  const [filter, setFilter] = useState(f);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const rounds = useLoad(() => api.get('/api/admin/crash/sessions', filter), [filter]);
  const d = rounds.data;
  return html`<section>
    <h1>Crash rounds</h1>
    <form class="inline-form" role="search" onSubmit=${(e) => { e.preventDefault(); setFilter(f); }}>
      <${Field} label="User ID" name="crash_user" type="number" min="1" value=${f.user_id} onInput=${set('user_id')} />
      <${Select} label="Status" name="crash_status" value=${f.status} onChange=${set('status')}
        options=${[['', 'any'], ['active', 'active'], ['cashed', 'cashed'], ['crashed', 'crashed'], ['expired', 'expired']]} />
      <${Field} label="Limit" name="crash_limit" type="number" min="1" max="500" value=${f.limit} onInput=${set('limit')} />
      <button type="submit">Filter</button>
      <button type="button" class="secondary" onClick=${rounds.reload}>Refresh</button>
    </form>
    <${ErrorBox} error=${rounds.error} />
    ${d && html`<${Table} caption=${`${d.count} rounds, newest first`}
      head=${['Round', 'User', 'Bet', 'Status', 'Auto', 'Crash point', 'Cashed at', 'Payout', 'Profit', 'Nonce', 'Started']}>
      ${d.items.map((r) => html`<tr key=${r.id}><td class="mono small">${r.external_session_id.slice(0, 8)}…</td>
        <td><a href=${`#/admin/users/${r.user_id}`}>#${r.user_id}</a></td><td>${fmt.n(r.bet_amount)}</td><td>${r.status}</td>
        <td>${fmt.x(r.auto_cashout_multiplier)}</td><td>${fmt.x(r.crash_point)}</td><td>${fmt.x(r.cashout_multiplier)}</td>
        <td>${fmt.n(r.payout_amount)}</td><td>${fmt.n(r.win_amount)}</td><td>${r.nonce}</td><td>${fmt.time(r.started_at)}</td></tr>`)}
    </${Table}>`}
  </section>`;
}
