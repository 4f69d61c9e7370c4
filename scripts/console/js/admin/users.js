// users.js - user search with paging, and a user's detail: balances, flags,
// recent ledger and rewards, activities with paging, and the mutations
// (PATCH, rank, ban/unban, token grant) of CONTRACT.md §13.1–13.2.
import {
  html, useState, Field, Select, Check, Area, ErrorBox, Table, Pager, useAction, useLoad, fmt, newKey,
} from '../ui.js';
import * as api from '../api.js';
import { navigate, toast } from '../store.js';

const RANKS = [['STANDARD', 'STANDARD'], ['PREMIUM', 'PREMIUM'], ['VIP', 'VIP']];

export function UsersView({ query }) {
  const [text, setText] = useState(query.get('search') || '');
  const [search, setSearch] = useState(text);
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState('20');
  const users = useLoad(() => api.get('/api/admin/users', { search, page, page_size: pageSize }), [search, page, pageSize]);
  const submit = (e) => {
    e.preventDefault();
    setSearch(text.trim());
    setPage(1);
  };
  const d = users.data;
  return html`<section>
    <h1>Users</h1>
    <form class="inline-form" role="search" onSubmit=${submit}>
      <${Field} label="Search nickname, site ID or phone" name="search" type="search" value=${text} onInput=${setText} />
      <${Select} label="Per page" name="page_size" value=${pageSize} onChange=${(v) => { setPageSize(v); setPage(1); }}
        options=${[['10', '10'], ['20', '20'], ['50', '50'], ['200', '200']]} />
      <button type="submit">Search</button>
    </form>
    <${ErrorBox} error=${users.error} />
    ${d && html`
      <${Table} caption=${`Users${search ? ` matching "${search}"` : ''}, newest first`}
        head=${['ID', 'Nickname', 'Site ID', 'Rank', 'Tokens', 'State', '']}>
        ${d.items.length === 0 && html`<tr><td colspan="7" class="muted">No users match.</td></tr>`}
        ${d.items.map((u) => html`<tr key=${u.id}>
          <td>${u.id}</td><td>${u.nickname}</td><td>${u.site_id}</td><td>${u.vip_tier}</td><td>${fmt.n(u.tokens)}</td>
          <td>${u.is_active ? 'active' : 'banned'}${u.is_admin ? ' · admin' : ''}</td>
          <td><a href=${`#/admin/users/${u.id}`} aria-label=${`Open ${u.nickname}`}>Open</a></td></tr>`)}
      </${Table}>
      <${Pager} page=${d.page} pageSize=${d.page_size} total=${d.total} onPage=${setPage} label="User pages" />`}
  </section>`;
}

function Activities({ id, version }) {
  const [page, setPage] = useState(1);
  const acts = useLoad(() => api.get(`/api/admin/users/${id}/activities`, { page, page_size: 10 }), [id, page, version]);
  const d = acts.data;
  return html`<section class="card" aria-labelledby="acts-h">
    <h2 id="acts-h">Activities</h2>
    <${ErrorBox} error=${acts.error} />
    ${d && html`<${Table} caption="Actions, newest first" head=${['ID', 'Type', 'At', 'Data']}>
      ${d.items.map((a) => html`<tr key=${a.id}><td>${a.id}</td><td>${a.type}</td><td>${fmt.time(a.at)}</td>
        <td class="mono small">${fmt.json(a.data)}</td></tr>`)}
    </${Table}>
    <${Pager} page=${d.page} pageSize=${d.page_size} total=${d.total} onPage=${setPage} label="Activity pages" />`}
  </section>`;
}

function EditForm({ user, onDone }) {
  const [f, setF] = useState({
    nickname: user.nickname, phone_number: user.phone_number, vip_tier: user.vip_tier, is_active: user.is_active,
    risk_profile: user.risk_profile || '', segment: user.segment || '',
  });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      await api.patch(`/api/admin/users/${user.id}`, {
        ...f, risk_profile: f.risk_profile === '' ? null : f.risk_profile, segment: f.segment === '' ? null : f.segment,
      });
      toast('User updated');
      onDone();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="edit-h">
    <h2 id="edit-h">Edit profile</h2>
    <${Field} label="Nickname" name="edit_nickname" value=${f.nickname} onInput=${set('nickname')} required />
    <${Field} label="Phone number" name="edit_phone" value=${f.phone_number} onInput=${set('phone_number')} required />
    <${Select} label="Rank (vip_tier)" name="edit_vip_tier" value=${f.vip_tier} onChange=${set('vip_tier')} options=${RANKS} />
    <${Field} label="Risk profile" name="edit_risk" value=${f.risk_profile} onInput=${set('risk_profile')} maxlength="32" />
    <${Field} label="Segment" name="edit_segment" value=${f.segment} onInput=${set('segment')} maxlength="32" />
    <${Check} label="Active (unchecked = banned indefinitely)" name="edit_active" checked=${f.is_active} onChange=${set('is_active')} />
    <button type="submit" disabled=${busy}>Save</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

function Actions({ user, onDone }) {
  const [rank, setRank] = useState(user.vip_tier);
  const [reason, setReason] = useState('');
  const [hours, setHours] = useState('');
  const [amount, setAmount] = useState('100');
  const [why, setWhy] = useState('');
  const { busy, error, run } = useAction();
  const act = (fn, msg) => (e) => {
    if (e) e.preventDefault();
    run(async () => { await fn(); toast(msg); onDone(); });
  };
  const banned = !user.is_active;
  return html`<div class="grid2">
    <form class="card" onSubmit=${act(() => api.put(`/api/admin/users/${user.id}/rank`, { user_rank: rank }), 'Rank changed')}
      aria-labelledby="rank-h">
      <h2 id="rank-h">Rank</h2>
      <${Select} label="New rank" name="rank" value=${rank} onChange=${setRank} options=${RANKS} />
      <button type="submit" disabled=${busy}>Change rank</button>
    </form>
    ${banned ? html`<form class="card" aria-labelledby="ban-h"
        onSubmit=${act(() => api.post(`/api/admin/users/${user.id}/unban`), 'User unbanned')}>
        <h2 id="ban-h">Ban</h2>
        <p>Banned${user.banned_until ? ` until ${fmt.time(user.banned_until)}` : ' indefinitely'}: ${user.ban_reason || ''}</p>
        <button type="submit" disabled=${busy}>Unban</button>
      </form>`
      : html`<form class="card" aria-labelledby="ban-h" onSubmit=${act(() => api.post(`/api/admin/users/${user.id}/ban`,
        { reason, duration_hours: hours === '' ? undefined : Number(hours) }), 'User banned')}>
        <h2 id="ban-h">Ban</h2>
        <${Area} label="Reason" name="ban_reason" value=${reason} onInput=${setReason} required maxlength="500" rows="2" />
        <${Field} label="Hours (empty = indefinite)" name="ban_hours" type="number" min="1" max="87600" value=${hours}
          onInput=${setHours} />
        <button type="submit" class="danger" disabled=${busy}>Ban user</button>
      </form>`}
    <form class="card" aria-labelledby="grant-h" onSubmit=${act(() => api.post(`/api/admin/users/${user.id}/tokens/add`,
      { amount: Number(amount), reason: why || undefined }, { headers: { 'Idempotency-Key': newKey() } }), 'Tokens granted')}>
      <h2 id="grant-h">Grant tokens</h2>
      <${Field} label="Amount" name="grant_amount" type="number" min="1" value=${amount} onInput=${setAmount} required />
      <${Field} label="Reason (optional)" name="grant_reason" value=${why} onInput=${setWhy} />
      <button type="submit" disabled=${busy}>Grant</button>
    </form>
    <${ErrorBox} error=${error} />
  </div>`;
}

export function UserDetailView({ id }) {
  const [version, setVersion] = useState(0);
  const detail = useLoad(() => api.get(`/api/admin/users/${id}`), [id, version]);
  const done = () => setVersion((v) => v + 1);
  const d = detail.data;
  return html`<section>
    <h1>User ${d ? d.user.nickname : `#${id}`}</h1>
    <p><a href="#/admin/users" onClick=${(e) => { e.preventDefault(); navigate('admin/users'); }}>← All users</a></p>
    <${ErrorBox} error=${detail.error} />
    ${d && html`
      <dl class="kv card" data-testid="user-detail">
        <dt>ID</dt><dd>${d.user.id}</dd>
        <dt>Site ID</dt><dd>${d.user.site_id}</dd>
        <dt>Phone</dt><dd>${d.user.phone_number}</dd>
        <dt>Rank</dt><dd>${d.user.vip_tier}</dd>
        <dt>State</dt><dd data-testid="user-state">${d.user.is_active ? 'active' : 'banned'}</dd>
        <dt>Flags</dt><dd>${d.flags.length ? d.flags.join(', ') : 'none'}</dd>
        <dt>Balances</dt><dd>${fmt.n(d.balances.tokens)} tokens · ${fmt.n(d.balances.gold)} gold ·
          ${fmt.n(d.balances.gems)} gems · ${fmt.n(d.balances.exp)} exp</dd>
        <dt>Created</dt><dd>${fmt.time(d.user.created_at)}</dd>
        <dt>Last login</dt><dd>${fmt.time(d.user.last_login)}</dd>
      </dl>
      <${Actions} key=${JSON.stringify(d.user)} user=${d.user} onDone=${done} />
      <${EditForm} key=${JSON.stringify(d.user)} user=${d.user} onDone=${done} />
      <${Table} caption="Recent ledger (10 newest)" head=${['ID', 'Currency', 'Delta', 'Balance after', 'Reason', 'Reference', 'At']}>
        ${d.recent.ledger.map((l) => html`<tr key=${l.id}><td>${l.id}</td><td>${l.currency}</td>
          <td class=${l.delta < 0 ? 'bad' : 'good'}>${l.delta > 0 ? '+' : ''}${fmt.n(l.delta)}</td><td>${fmt.n(l.balance_after)}</td>
          <td>${l.reason}</td><td class="mono small">${l.reference || '–'}</td><td>${fmt.time(l.at)}</td></tr>`)}
      </${Table}>
      <${Table} caption="Recent rewards" head=${['ID', 'Type', 'At']}>
        ${d.recent.rewards.length === 0 && html`<tr><td colspan="3" class="muted">None.</td></tr>`}
        ${d.recent.rewards.map((r) => html`<tr key=${r.id}><td>${r.id}</td><td>${r.type}</td><td>${fmt.time(r.at)}</td></tr>`)}
      </${Table}>
      <${Activities} id=${id} version=${version} />`}
  </section>`;
}
